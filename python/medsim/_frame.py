"""Data frames into the columns medsim's library reads.

Numbers go across as float64 arrays (NaN is missing); the unit, time,
cluster, group and strata columns as text, whatever their dtype (strings,
categoricals, integers), with missing values as "". Rows with a missing
value in a used column are then dropped and counted by the library, as the
CLI drops and counts them in a CSV.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ._medsim import MedsimError


def to_pandas(data: Any):
    """``data`` as a pandas DataFrame: pandas itself, polars (``to_pandas``)
    or anything speaking the dataframe interchange protocol."""
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        return data
    if type(data).__module__.split(".")[0] == "polars" and hasattr(data, "get_column"):
        # Column by column through numpy: no pyarrow needed (polars'
        # to_pandas wants it); nulls become NaN or None.
        return pd.DataFrame({name: data.get_column(name).to_numpy() for name in data.columns})
    if hasattr(data, "to_pandas"):
        frame = data.to_pandas()
        if isinstance(frame, pd.DataFrame):
            return frame
    if hasattr(data, "__dataframe__"):
        return pd.api.interchange.from_dataframe(data)
    raise MedsimError(
        f"data must be a data frame (pandas, polars, or one with __dataframe__), "
        f"not {type(data).__name__}"
    )


def _column(frame, name: str):
    if name not in frame.columns:
        have = ", ".join(map(str, frame.columns))
        raise MedsimError(f"the data have no column named {name!r}; they have: {have}")
    column = frame[name]
    if getattr(column, "ndim", 1) != 1:
        raise MedsimError(f"the data have more than one column named {name!r}")
    return column


def numeric(frame, name: str) -> np.ndarray:
    """Column ``name`` as float64, missing values NaN; a clear error at the
    first value that is not a number."""
    import pandas as pd

    column = _column(frame, name)
    if pd.api.types.is_bool_dtype(column.dtype):
        return column.astype("float64").to_numpy()
    if pd.api.types.is_numeric_dtype(column.dtype):
        return column.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)
    converted = pd.to_numeric(column, errors="coerce")
    bad = converted.isna() & ~column.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise MedsimError(
            f"column {name!r}: row {row} (index {column.index[row]!r}): {column.iloc[row]!r} "
            "is not a number; medsim needs numbers in this column"
        )
    return converted.astype("Float64").to_numpy(dtype="float64", na_value=np.nan)


def _label(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        if value.is_integer():
            return str(int(value))
        return repr(value)
    if isinstance(value, (np.floating,)):
        return _label(float(value))
    if isinstance(value, (np.integer,)):
        return str(int(value))
    try:
        import pandas as pd

        if value is pd.NA or value is pd.NaT:
            return ""
    except ImportError:  # pragma: no cover
        pass
    return str(value)


def labels(frame, name: str) -> list[str]:
    """Column ``name`` as text (an id of any dtype), missing values ""."""
    column = _column(frame, name)
    return [_label(v) for v in column.tolist()]
