"""medsim: massive resampling of panel-data mediation models.

Two-way fixed-effects mediation (treatment -> mediator -> outcome) with
cluster-robust inference, and hundreds of thousands of bootstrap replicates
per second on the CPU or a GPU, from a Rust core (the same library as the
``medsim`` command line, so the same numbers to the last digit).

>>> import medsim as ms
>>> df = ms.generate()                       # the study-calibrated synthetic panel
>>> fit = ms.mediate("log_ci ~ dei + ln_gdp + industry | city + year",
...                  data=df, treatment="dei", mediator="agglom")
>>> fit = fit.bootstrap(scheme="pairs", reps=10_000, seed=1)
>>> fit.tidy()                               # effects, SEs, p-values, intervals
>>> fit.summary()                            # the CLI's table

See ``help(ms.mediate)``, ``help(ms.Fit)`` and docs/python.md.
"""

from __future__ import annotations

import json
import os
from typing import Any, Iterable

from . import _frame
from ._fit import Fit, set_resampling
from ._formula import parse as _parse_formula
from ._medsim import MedsimError, __version__
from . import _medsim

__all__ = [
    "Fit",
    "MedsimError",
    "__version__",
    "devices",
    "generate",
    "mediate",
    "run",
    "simulate",
    "sweep",
    "threshold",
]


def _as_list(value, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",")] if "," in value else [value]
    try:
        items = list(value)
    except TypeError:
        raise MedsimError(f"{what} is a column name or a list of them, not {value!r}") from None
    if not all(isinstance(v, str) for v in items):
        raise MedsimError(f"{what} is a column name or a list of them, not {value!r}")
    return items


def _labels_of(config: dict) -> list[str]:
    d, m, r = config["data"], config["model"], config["resampling"]
    names = [d["unit"], d["time"], m.get("cluster") or d["unit"], *m.get("groups", [])]
    if r.get("strata"):
        names.append(r["strata"])
    names.extend(d.get("drop", {}).keys())
    fe = m.get("fixed_effects", "")
    if "^" in fe and "+" in fe:
        # unit+GROUP^time: the group is a label column.
        names.append(fe.split("+", 1)[1].split("^", 1)[0].strip())
    return list(dict.fromkeys(names))


def _numeric_of(config: dict) -> list[str]:
    m = config["model"]
    names = [m["outcome"], m["treatment"], *m["mediators"], *m["controls"], *m["instrument"],
             *m.get("mediator_instrument", [])]
    if m.get("moderator"):
        names.append(m["moderator"])
    for group in m.get("also_mediators", []):
        names.extend(group)
    return list(dict.fromkeys(names))


def _columns(frame, config: dict, source: str):
    labels = _labels_of(config)
    numeric = [n for n in _numeric_of(config) if n not in labels]
    return (
        [(n, _frame.numeric(frame, n)) for n in numeric],
        [(n, _frame.labels(frame, n)) for n in labels],
        source,
    )


def mediate(
    formula: Any = None,
    data: Any = None,
    *,
    outcome: str | None = None,
    treatment: str | None = None,
    mediator: str | Iterable[str] | None = None,
    controls: str | Iterable[str] | None = None,
    unit: str | None = None,
    time: str | None = None,
    fixed_effects: str = "unit+time",
    cluster: str | None = None,
    group: str | Iterable[str] | None = None,
    instrument: str | Iterable[str] | None = None,
    mediator_instrument: str | Iterable[str] | None = None,
    also_mediators: Iterable[Iterable[str]] | None = None,
    moderator: str | None = None,
    moderated: str | Iterable[str] | None = None,
    center: bool = False,
    at: str | Iterable[float] | dict | None = None,
    interaction: bool = False,
    contrast: Iterable[float] | None = None,
    serial: bool = False,
    lag: dict[str, int] | None = None,
    lead: dict[str, int] | None = None,
    confounding: bool = True,
    benchmark: str | Iterable[str] | None = None,
    kd: float | Iterable[float] | None = None,
    rv_replicates: bool = False,
    name: str = "medsim",
    sheet: str | None = None,
    scheme: str | None = None,
    reps: int | None = None,
    seed: int | None = None,
    ci: str | Iterable[str] | None = None,
    level: float | Iterable[float] | None = None,
    weights_type: str | None = None,
    strata: str | None = None,
    backend: str | None = None,
    precision: str | None = None,
    threads: int | None = None,
    wild_tests: bool | None = None,
    keep_replicates: bool = False,
) -> Fit:
    """Fit the panel mediation model treatment -> mediator -> outcome.

    Three equations with the same controls and fixed effects (the total
    effect c, the mediator's a, the outcome's b and c'), CR1 cluster-robust
    SEs (the unit unless ``cluster``), the indirect effect a*b with its
    delta-method SE, Sobel and Monte Carlo intervals. Resampling keywords
    (``scheme``, ``reps``, ``ci``, ...) resample at once, as
    :meth:`Fit.bootstrap` does; without them nothing is resampled.

    Two forms:

    * ``mediate(df, outcome="log_ci", treatment="dei", mediator="agglom",
      controls=["ln_gdp", "industry"], unit="city", time="year")``
    * ``mediate("log_ci ~ dei + ln_gdp + industry | city + year", data=df,
      treatment="dei", mediator="agglom")``: pyfixest's grammar; the
      regressors other than the treatment are the controls, the fixed
      effects are the unit and the period (one: unit effects only; ``0``:
      none, and then ``unit=`` and ``time=`` say the panel's columns);
      ``"y ~ controls | city + year | dei ~ z"`` instruments the treatment,
      ``"y ~ dei + controls | city + year | agglom ~ z"`` the mediator
      (``mediator="agglom"``; as ``mediator_instrument=``).

    ``data``: a pandas or polars DataFrame (or one with ``__dataframe__``),
    or the path of a data file, read as the CLI's ``--data`` reads it: CSV,
    Stata ``.dta`` (a group column's value labels are its groups' names),
    Parquet or Excel (``sheet=``, default the first sheet).
    Numeric columns are read as float64; unit, time, cluster and group
    columns may be of any dtype (strings, categoricals, integers). Rows
    with a missing value in a used column are dropped and counted
    (``fit.to_dict()["data"]["dropped_missing"]``), as the CLI drops them.
    ``mediator``: one column, or several in parallel. ``group``: a model per
    group of clusters and every pair's difference. ``also_mediators``:
    other sets of parallel mediators fitted on the same replicates.
    ``fixed_effects``: "unit+time", "unit", "none", or "unit+GROUP^time"
    (unit and group-by-period effects, e.g. "unit+province^time"; the
    formula's ``| city + province^year``). ``lag`` and ``lead``
    replace columns by their value K periods earlier or later in the same
    unit, e.g. ``lag={"dei": 1, "ln_gdp": 2}`` (a unit's missing period
    makes the value missing; the row is dropped and counted).

    Omitted-variable bounds (Cinelli and Hazlett 2020), on by default as in
    ``medsim run``: ``to_dict()["confounding"]`` has each path's partial
    R-squared and robustness values; ``benchmark`` names controls that
    bound the confounder and ``kd`` its multiples of their strength
    (default 1, 2, 3), giving the adjusted estimates and intervals.
    ``confounding=False`` leaves them out; an instrumented or moderated
    model goes without them unless ``benchmark`` or ``kd`` asks.
    ``rv_replicates=True`` resamples each path's robustness value too
    (its ``rv_bootstrap`` and ``rv_intervals``; reweighting schemes).

    Moderated mediation (PROCESS models 7, 14, 58, 59): ``moderator`` names
    W; ``moderated`` the paths it moderates ("a", "b", "direct"; default
    a and b); ``center=True`` mean-centres X and W before forming products;
    ``at`` the W values of the conditional effects (a list, "mean-sd",
    ``{"percentiles": [16, 50, 84]}``, the default, or "levels": W is
    categorical, one indicator per level above the lowest, with ``a3``,
    ``a3_2``, ... per level). The fit then has
    ``a3``/``b3``/``c3_prime``, ``conditional_indirect:K``,
    ``index_moderated_mediation`` or ``indirect_difference`` among its
    effects and ``to_dict()["moderation"]`` (docs/moderation.md).
    ``interaction=True`` adds X*M to the outcome equation: ``interaction``,
    ``natural_direct`` and ``natural_indirect`` of moving X by ``contrast``
    ``(x0, x1)`` (default the mean to the mean plus one SD).
    ``instrument`` names the treatment's excluded instruments (two-stage
    least squares in every equation; ``to_dict()["iv"]`` has the
    cluster-robust first-stage F); ``mediator_instrument`` the mediators'
    (at least one per mediator): the outcome equation's mediators are then
    endogenous and b, c' and a*b are 2SLS, as R's ``mediation::mediate_tsls``,
    with each mediator's first stage in ``to_dict()["mediator_iv"]``. Both
    combine; F below 10 is warned of.
    ``serial=True`` makes the mediators (2 to 4) a chain in the order
    given (PROCESS model 6): every path such as ``indirect:m1>m2``, the
    links ``d:m1:m2``, their total and differences, and
    ``to_dict()["serial"]`` (docs/moderation.md).

    Errors are :class:`MedsimError` with the CLI's message (the column, the
    row, the keyword and what was expected).

    >>> fit = ms.mediate(df, outcome="log_ci", treatment="dei", mediator="agglom",
    ...                  unit="city", time="year", scheme="pairs", reps=10_000)
    >>> fit.tidy()
    """
    if formula is not None and not isinstance(formula, str):
        if data is not None:
            raise MedsimError(
                "mediate(df, ...) takes the data first, or mediate(formula, data=df, ...); "
                "not two data frames"
            )
        formula, data = None, formula
    if formula is not None:
        formula = _parse_formula(formula)
        if outcome is not None and outcome != formula.outcome:
            raise MedsimError(
                f"outcome={outcome!r} and the formula's outcome {formula.outcome!r} differ"
            )
        outcome = formula.outcome
        if formula.endogenous is not None and formula.endogenous in _as_list(mediator, "mediator="):
            # The mediator instrumented: the treatment stays a regressor.
            if mediator_instrument is not None:
                raise MedsimError(
                    "give the mediator's instruments in the formula or as mediator_instrument=, "
                    "not both"
                )
            mediator_instrument = formula.instruments
            formula.endogenous = None
        if formula.endogenous is not None:
            if treatment is not None and treatment != formula.endogenous:
                raise MedsimError(
                    f"the formula instruments {formula.endogenous!r}, but treatment={treatment!r}; "
                    "the instrumented variable is the treatment"
                )
            treatment = formula.endogenous
            if instrument is not None:
                raise MedsimError("give the instruments in the formula or as instrument=, not both")
            instrument = formula.instruments
            rhs = formula.regressors
        else:
            if treatment is None:
                raise MedsimError(
                    "treatment= names which of the formula's regressors is the treatment"
                )
            if treatment not in formula.regressors:
                raise MedsimError(
                    f"treatment={treatment!r} is not among the formula's regressors "
                    f"({', '.join(formula.regressors)})"
                )
            rhs = [r for r in formula.regressors if r != treatment]
        if controls is not None:
            raise MedsimError("give the controls in the formula or as controls=, not both")
        controls = rhs
        fe = formula.fixed_effects
        interacted = [f for f in fe if "^" in f]
        if interacted:
            if len(fe) != 2 or "^" in fe[0]:
                raise MedsimError(
                    f"interacted fixed effects are written '| unit + group^period' "
                    f"(e.g. '| city + province^year'), not '| {' + '.join(fe)}'"
                )
            cells, period = interacted[0].split("^")
            unit, time = _same(unit, fe[0], "unit"), _same(time, period, "time")
            fixed_effects = f"unit+{cells}^time"
        elif len(fe) == 2:
            unit, time, fixed_effects = _same(unit, fe[0], "unit"), _same(time, fe[1], "time"), "unit+time"
        elif len(fe) == 1:
            unit, fixed_effects = _same(unit, fe[0], "unit"), "unit"
        else:
            fixed_effects = "none"
    if data is None:
        raise MedsimError(
            "data= is required: a DataFrame or a data file's path (ms.generate() makes the "
            "synthetic panel)"
        )
    missing = [k for k, v in (("outcome", outcome), ("treatment", treatment), ("mediator", mediator),
                              ("unit", unit), ("time", time)) if v is None]
    if missing:
        raise MedsimError(
            f"{', '.join(m + '=' for m in missing)} {'is' if len(missing) == 1 else 'are'} required "
            "(the column names of the model's roles and of the panel's unit and period)"
        )
    is_file = isinstance(data, (str, os.PathLike))
    if sheet is not None and not is_file:
        raise MedsimError("sheet= picks a sheet of a workbook given as data= (a path)")
    frame = None if is_file else _frame.to_pandas(data)
    config = json.loads(_medsim.default_config())
    keywords: dict[str, str] = {}

    def put(section: str, key: str, value, word: str):
        config[section][key] = value
        keywords[f"{section}.{key}"] = word

    config["name"] = name
    keywords["name"] = "name="
    config["data"].pop("synthetic", None)
    if is_file:
        # Read by the library, as `medsim run --data FILE` reads it.
        put("data", "csv", os.path.abspath(os.fspath(data)), "data=")
        if sheet is not None:
            put("data", "sheet", sheet, "sheet=")
    put("data", "unit", unit, "unit=")
    put("data", "time", time, "time=")
    put("model", "outcome", outcome, "outcome=")
    put("model", "treatment", treatment, "treatment=")
    put("model", "mediators", _as_list(mediator, "mediator="), "mediator=")
    put("model", "controls", _as_list(controls, "controls="), "controls=")
    put("model", "fixed_effects", fixed_effects, "fixed_effects=")
    if cluster is not None:
        put("model", "cluster", cluster, "cluster=")
    put("model", "groups", _as_list(group, "group="), "group=")
    put("model", "instrument", _as_list(instrument, "instrument="), "instrument=")
    if mediator_instrument is not None:
        put(
            "model",
            "mediator_instrument",
            _as_list(mediator_instrument, "mediator_instrument="),
            "mediator_instrument=",
        )
    put(
        "model",
        "also_mediators",
        [_as_list(s, "also_mediators=") for s in (also_mediators or [])],
        "also_mediators=",
    )
    if moderator is not None:
        put("model", "moderator", moderator, "moderator=")
    if moderated is not None:
        put("model", "moderated", _as_list(moderated, "moderated="), "moderated=")
    if center:
        put("model", "center", True, "center=")
    if at is not None:
        put("model", "at", at if isinstance(at, (str, dict)) else [float(v) for v in at], "at=")
    if interaction:
        put("model", "interaction", True, "interaction=")
    if contrast is not None:
        put("model", "contrast", [float(v) for v in contrast], "contrast=")
    if serial:
        put("model", "serial", True, "serial=")
    for word, shifts in (("lag", lag), ("lead", lead)):
        if shifts is not None:
            if not isinstance(shifts, dict):
                raise MedsimError(f"{word}= is a dict of column to periods, e.g. {{'dei': 1}}")
            put("data", word, {str(k): int(v) for k, v in shifts.items()}, f"{word}=")
    if not confounding:
        config.pop("sensitivity", None)
    if benchmark is not None or kd is not None or rv_replicates:
        if not confounding:
            raise MedsimError(
                "benchmark=, kd= and rv_replicates= set the omitted-variable bounds; leave confounding=True"
            )
        put("sensitivity", "confounding", True, "confounding=")
        if rv_replicates:
            put("sensitivity", "rv_replicates", True, "rv_replicates=")
        if benchmark is not None:
            put("sensitivity", "benchmark", _as_list(benchmark, "benchmark="), "benchmark=")
        if kd is not None:
            values = [kd] if isinstance(kd, (int, float)) else list(kd)
            put("sensitivity", "kd", [float(v) for v in values], "kd=")
    options = dict(scheme=scheme, reps=reps, seed=seed, ci=ci, level=level, weights_type=weights_type,
                   strata=strata, backend=backend, precision=precision, threads=threads,
                   wild_tests=wild_tests)
    if not set_resampling(config, keywords, options):
        config["resampling"]["scheme"] = "none"
    columns = None if is_file else _columns(frame, config, "DataFrame")
    return Fit(config, keywords, frame, columns, None, keep_replicates)


def _same(given: str | None, from_formula: str, what: str) -> str:
    if given is not None and given != from_formula:
        raise MedsimError(f"{what}={given!r} and the formula's fixed effect {from_formula!r} differ")
    return from_formula


def run(config: str | os.PathLike | dict, data: Any = None, keep_replicates: bool = False) -> Fit:
    """Run the analysis a config describes, as ``medsim run --config``: a
    path to a TOML file (its relative paths are its folder's), or a dict of
    the same sections (``{"model": {...}, "resampling": {...}}``; keys left
    out take the embedded default's values, as in a file). ``data``: a
    DataFrame used instead of the config's ``[data]`` source (its unit and
    time columns still come from the config). Returns a :class:`Fit`.

    >>> fit = ms.run("configs/paper.toml")
    >>> fit = ms.run({"resampling": {"replicates": 2000}})   # the default, B = 2000
    """
    if isinstance(config, dict):
        base = json.loads(_medsim.default_config())
        for section, values in config.items():
            if isinstance(values, dict) and isinstance(base.get(section), dict):
                base[section].update(values)
            else:
                base[section] = values
        if "data" in config and ("csv" in config["data"]) and "synthetic" not in config["data"]:
            base["data"].pop("synthetic", None)
        origin = None
        text = base
    else:
        origin = os.fspath(config)
        text = json.loads(_medsim.read_config(origin))
    columns = None
    frame = None
    if data is not None:
        frame = _frame.to_pandas(data)
        text["data"].pop("synthetic", None)
        text["data"].pop("csv", None)
        columns = _columns(frame, text, "DataFrame")
    return Fit(text, {}, frame, columns, origin, keep_replicates)


def sweep(config: str | os.PathLike):
    """Run a sweep config (its ``[sweep]`` table of keys and values) as
    ``medsim sweep CONFIG`` does, point after point; returns sweep.csv as
    a pandas DataFrame: one row per point, model, effect and interval
    (columns ``point``, the swept keys, ``model``, ``effect``,
    ``estimate``, ``se``, ``p_value``, ``bootstrap_p_value``, ``method``,
    ``level``, ``lower``, ``upper``).

    >>> table = ms.sweep("configs/sweep_effect_size.toml")
    """
    return _csv_frame(_medsim.sweep(os.fspath(config)))


def simulate(config: str | os.PathLike, threads: int = 0):
    """Run a simulation study's config (its ``[simulation]`` section) as
    ``medsim simulate CONFIG`` does; returns simulation.csv as a pandas
    DataFrame (one row per cell, level and method: coverage, power, width,
    ...), with simulation.json's dict in ``.attrs["summary"]``. ``threads``:
    datasets analysed in parallel (0: one per core). Results do not depend
    on it. Ctrl-C stops the study (``KeyboardInterrupt``) within a
    dataset's time.

    >>> power = ms.simulate("configs/power_iid.toml")
    """
    text, summary = _medsim.simulate(os.fspath(config), threads)
    frame = _csv_frame(text)
    frame.attrs["summary"] = json.loads(summary)
    return frame


def threshold(config: str | os.PathLike, replicates: int | None = None):
    """Run a threshold config (its ``[threshold]`` section: Hansen's 1999
    panel threshold model) as ``medsim threshold CONFIG`` does; returns its
    F tests as a pandas DataFrame (one row per number of thresholds k: F,
    bootstrap p-value, the 90/95/99 % critical values, the thresholds),
    with threshold.json's dict in ``.attrs["summary"]`` (thresholds with
    their confidence sets, regime coefficients, LR curves, and with
    ``mediation = true`` the regime mediation block), the printed report in
    ``.attrs["report"]`` and, with regime mediation, its run's summary in
    ``.attrs["mediation"]``. ``replicates`` overrides the config's, as -B
    does (the F tests' and the mediation run's). Ctrl-C stops the bootstrap (``KeyboardInterrupt``).

    >>> tests = ms.threshold("configs/threshold.toml", replicates=300)
    """
    import pandas as pd

    text, report, mediation = _medsim.threshold(os.fspath(config), replicates)
    summary = json.loads(text)
    rows = []
    for step in summary["steps"]:
        crit = step["critical_values"] or [None, None, None]
        rows.append(
            {
                "k": step["k"],
                "f_stat": step["f_stat"],
                "p_value": step["p_value"],
                "crit_90": crit[0],
                "crit_95": crit[1],
                "crit_99": crit[2],
                "thresholds": [t["estimate"] for t in step["thresholds"]],
            }
        )
    frame = pd.DataFrame(rows)
    frame.attrs["summary"] = summary
    frame.attrs["report"] = report
    if mediation is not None:
        frame.attrs["mediation"] = json.loads(mediation)
    return frame


def _csv_frame(text: str):
    """A CSV medsim wrote, as a DataFrame (only an empty cell is missing)."""
    import io

    import pandas as pd

    return pd.read_csv(io.StringIO(text), keep_default_na=False, na_values=[""])


def generate(seed: int = 1, cities: int = 278, years: int = 10):
    """The study-calibrated synthetic panel as a pandas DataFrame (the
    CSV ``medsim generate`` writes): city, year, province, region, size,
    dei, agglom, agglom_sec, agglom_ter, log_ci, six controls and an
    instrument."""
    import pandas as pd

    headers, rows = _medsim.generate(seed, cities, years)
    frame = pd.DataFrame(rows, columns=headers)
    for name in headers:
        # Numbers where every cell is one; ids and labels stay text.
        try:
            frame[name] = pd.to_numeric(frame[name])
        except ValueError:
            pass
    return frame


def devices() -> list[dict]:
    """The GPU adapters medsim can use (``medsim devices``): name, type,
    API, driver, whether it is hardware (what ``backend="auto"`` takes) and
    whether it runs f64 shaders."""
    return [
        dict(name=n, device_type=t, api=a, driver=d, hardware=h, shader_f64=f)
        for n, t, a, d, h, f in _medsim.devices()
    ]
