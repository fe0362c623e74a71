"""Type stubs of the compiled module (python/src/lib.rs)."""

from os import PathLike

import numpy as np
import numpy.typing as npt

__version__: str

class MedsimError(ValueError):
    """An error medsim reports: bad data (which row, which column), a bad
    option (which keyword or config key, what was expected), or a failed
    GPU or numerical step."""

def run(
    config_json: str,
    keywords: dict[str, str],
    origin: str | PathLike[str] | None,
    numeric: list[tuple[str, npt.NDArray[np.float64]]],
    labels: list[tuple[str, list[str]]],
    source: str | None,
    keep_replicates: bool,
) -> tuple[
    str,
    str,
    npt.NDArray[np.float64],
    tuple[list[str], npt.NDArray[np.float64]] | None,
]: ...
def sweep(path: str | PathLike[str]) -> str: ...
def simulate(path: str | PathLike[str], threads: int) -> tuple[str, str]: ...
def generate(seed: int, cities: int, years: int) -> tuple[list[str], list[list[str]]]: ...
def default_config() -> str: ...
def read_config(path: str | PathLike[str]) -> str: ...
def devices() -> list[tuple[str, str, str, str, bool, bool]]: ...
