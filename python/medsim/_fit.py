"""The result of an analysis: estimates, resampling results and the ways to
read them (tables, intervals, draws, a plot)."""

from __future__ import annotations

import copy
import json
from typing import Any, Iterable

import numpy as np

from . import _medsim
from ._medsim import MedsimError

# Resampling keywords -> (config section, key), and how a value is stored.
_RESAMPLING = {
    "scheme": ("resampling", "scheme"),
    "reps": ("resampling", "replicates"),
    "seed": ("resampling", "seed"),
    "weights_type": ("resampling", "weights"),
    "strata": ("resampling", "strata"),
    "backend": ("resampling", "backend"),
    "precision": ("resampling", "precision"),
    "threads": ("resampling", "threads"),
    "wild_tests": ("resampling", "wild_tests"),
    "ci": ("inference", "methods"),
    "level": ("inference", "levels"),
}


def set_resampling(config: dict, keywords: dict, options: dict[str, Any]) -> bool:
    """Write the resampling keywords given (not None) into ``config``,
    recording each key's keyword; True if any was given."""
    given = False
    for word, value in options.items():
        if value is None:
            continue
        section, key = _RESAMPLING[word]
        if word == "ci":
            value = [value] if isinstance(value, str) else list(value)
        elif word == "level":
            value = [float(value)] if np.isscalar(value) else [float(v) for v in value]
        config[section][key] = value
        keywords[f"{section}.{key}"] = f"{word}="
        given = True
    return given


class Fit:
    """A fitted mediation model, with its resampling results if any.

    Made by :func:`medsim.mediate` (or :func:`medsim.run`); ``bootstrap``
    and ``sensitivity`` return a new Fit of the same model. ``to_dict()`` is
    the CLI's summary.json for the same data and options, value for value.
    """

    def __init__(self, config: dict, keywords: dict, frame, columns, origin, keep: bool):
        self._config = config
        self._keywords = keywords
        self._frame = frame
        self._columns = columns
        self._origin = origin
        self._keep = keep
        numeric, labels, source = columns if columns is not None else ([], [], None)
        text, table, draws, replicates = _medsim.run(
            json.dumps(config), keywords, origin, numeric, labels, source, keep
        )
        self._summary = json.loads(text)
        self._table = table
        self._draws = draws
        self._replicates = replicates

    # -- making new fits -------------------------------------------------

    def _again(self, options: dict[str, Any], keep: bool | None = None, sensitivity=None) -> "Fit":
        config = copy.deepcopy(self._config)
        keywords = dict(self._keywords)
        if options:
            set_resampling(config, keywords, options)
        if sensitivity is not None:
            config["sensitivity"] = {**(config.get("sensitivity") or {}), "rho": sensitivity}
            keywords["sensitivity"] = "rho="
        return Fit(
            config,
            keywords,
            self._frame,
            self._columns,
            self._origin,
            self._keep if keep is None else keep,
        )

    def bootstrap(
        self,
        scheme: str = "pairs",
        reps: int = 10_000,
        seed: int = 1,
        ci: str | Iterable[str] = ("percentile", "bca"),
        level: float | Iterable[float] = 0.95,
        weights_type: str = "rademacher",
        strata: str | None = None,
        backend: str = "auto",
        precision: str | None = None,
        threads: int | None = None,
        wild_tests: bool | None = None,
        keep_replicates: bool = False,
    ) -> "Fit":
        """Resample the model: a new Fit with bootstrap SEs, p-values and
        intervals.

        ``scheme``: pairs (cluster bootstrap), bayes, poisson, jackknife,
        wild or permutation. ``ci``: percentile, basic, normal, bc, bca,
        studentized (one or several). ``weights_type``: the wild scheme's
        rademacher, mammen, webb or normal. ``strata``: a column whose
        clusters are resampled within their stratum. ``backend``: auto, cpu
        or gpu; ``precision`` f32 or f64 for the GPU. ``keep_replicates``:
        every replicate's effects, for :meth:`replicates`.

        >>> fit = ms.mediate(df, outcome="log_ci", treatment="dei", mediator="agglom",
        ...                  unit="city", time="year").bootstrap(reps=2000, seed=7)
        >>> fit.confint(method="bca")
        """
        options = dict(
            scheme=scheme,
            reps=reps,
            seed=seed,
            ci=ci,
            level=level,
            weights_type=weights_type,
            strata=strata,
            backend=backend,
            precision=precision,
            threads=threads,
            wild_tests=wild_tests,
        )
        return self._again(options, keep=keep_replicates)

    def sensitivity(self, rho=None) -> "Fit":
        """Imai-Keele-Yamamoto sensitivity of the indirect effect to an
        error correlation rho between the mediator and outcome equations:
        ``rho`` a dict ``{"from": -0.9, "to": 0.9, "step": 0.05}`` (the
        default). A new Fit whose ``to_dict()["sensitivity"]`` holds the
        curve."""
        grid = {"from": -0.9, "to": 0.9, "step": 0.05}
        if rho is not None:
            if not isinstance(rho, dict):
                raise MedsimError("rho= is a dict with keys 'from', 'to' and 'step'")
            grid.update(rho)
        return self._again({}, sensitivity=grid)

    # -- reading results -------------------------------------------------

    def to_dict(self) -> dict:
        """The summary as a dict: the CLI's summary.json for the same data
        and options."""
        return copy.deepcopy(self._summary)

    @property
    def effects(self) -> dict:
        """Each effect (a, b, c, c_prime, indirect, ...) with its estimate,
        SE, p-value and bootstrap results."""
        return copy.deepcopy(self._summary["effects"])

    def summary(self) -> None:
        """Print the table ``medsim run`` prints."""
        print(self._table, end="")

    def __str__(self) -> str:
        return self._table

    def __repr__(self) -> str:
        m = self._summary["model"]
        boot = self._summary.get("resampling")
        how = f", {boot['scheme']} x {boot['replicates']}" if boot else ""
        return (
            f"<medsim.Fit {m['treatment']} -> {' + '.join(m['mediators'])} -> {m['outcome']}, "
            f"{self._summary['data']['observations']} observations{how}>"
        )

    def _interval_columns(self, method: str | None, level: float | None):
        intervals = self._summary.get("intervals", [])
        if method is None:
            order = ["bca", "percentile", "bc", "basic", "normal", "studentized"]
            have = {i["method"] for i in intervals}
            method = next((m for m in order if m in have), None)
        return method, [i for i in intervals if i["method"] == method and (level is None or i["level"] == level)]

    def tidy(self, method: str | None = None):
        """The effects as a pandas DataFrame, one row each, as pyfixest's
        ``tidy()``: ``Estimate``, ``Std. Error``, ``t value``, ``Pr(>|t|)``
        (analytic, delta-method), then the bootstrap's ``Boot. SE`` and
        ``Boot. p`` and the bounds of ``method``'s intervals (default the
        first of bca, percentile, bc, basic, normal, studentized the run
        has) at each level, e.g. ``2.5%`` and ``97.5%``."""
        import pandas as pd

        method, intervals = self._interval_columns(method, None)
        rows = []
        for key, e in self._summary["effects"].items():
            se = e.get("se")
            estimate = e.get("estimate")
            row = {
                "Estimate": estimate,
                "Std. Error": se,
                "t value": (estimate / se) if (se not in (None, 0) and estimate is not None) else np.nan,
                "Pr(>|t|)": e.get("p_value"),
            }
            boot = e.get("bootstrap")
            if boot is not None:
                row["Boot. SE"] = boot.get("sd")
                row["Boot. p"] = boot.get("p_value")
            for i in intervals:
                if i["effect"] != key:
                    continue
                lo, hi = (1 - i["level"]) / 2, (1 + i["level"]) / 2
                row[f"{100 * lo:g}%"] = i["lower"]
                row[f"{100 * hi:g}%"] = i["upper"]
            rows.append((key, row))
        frame = pd.DataFrame([r for _, r in rows], index=[k for k, _ in rows])
        frame.index.name = "Effect"
        frame.attrs["interval_method"] = method
        return frame.astype("float64")

    def confint(self, method: str | None = None, level: float | None = None):
        """Intervals as a DataFrame indexed by effect, columns ``lower`` and
        ``upper`` (and ``level`` when several): ``method`` any the run
        computed (sobel, monte_carlo, percentile, bca, ...; default as
        :meth:`tidy`), ``level`` one of the run's levels (default all)."""
        import pandas as pd

        method, intervals = self._interval_columns(method, level)
        if not intervals:
            have = sorted({(i["method"], i["level"]) for i in self._summary.get("intervals", [])})
            raise MedsimError(
                f"no {method} intervals"
                + (f" at level {level}" if level is not None else "")
                + f" in this fit; it has: {', '.join(f'{m} {l:g}' for m, l in have) or 'none'}"
            )
        frame = pd.DataFrame(
            [{"effect": i["effect"], "level": i["level"], "lower": i["lower"], "upper": i["upper"]} for i in intervals]
        ).set_index("effect")
        if frame["level"].nunique() == 1:
            frame = frame.drop(columns="level")
        return frame

    @property
    def groups(self):
        """Each group's model (``group=``) as a DataFrame: one row per group
        and effect, with estimate, SE, p-value and bootstrap SE."""
        import pandas as pd

        rows = []
        for label, g in self._summary.get("groups", {}).items():
            for key, e in g.get("effects", {}).items():
                boot = e.get("bootstrap") or {}
                rows.append(
                    {
                        "group": label,
                        "effect": key,
                        "estimate": e.get("estimate"),
                        "se": e.get("se"),
                        "p_value": e.get("p_value"),
                        "boot_se": boot.get("sd", np.nan),
                    }
                )
        return pd.DataFrame(rows, columns=["group", "effect", "estimate", "se", "p_value", "boot_se"])

    @property
    def contrasts(self):
        """Each effect's difference between every two groups (first minus
        second), one row each: estimate, SE, bootstrap SE and p-value, the
        permutation test's p-value where the run made one."""
        import pandas as pd

        rows = []
        for c in self._summary.get("contrasts", []):
            boot = c.get("bootstrap") or {}
            first, second = c["between"]
            rows.append(
                {
                    "effect": c["effect"],
                    "first": first,
                    "second": second,
                    "estimate": c.get("estimate"),
                    "se": c.get("se"),
                    "boot_se": boot.get("sd", np.nan),
                    "boot_p": boot.get("p_value", np.nan),
                    "permutation_p": c.get("permutation_p_value", np.nan),
                }
            )
        columns = ["effect", "first", "second", "estimate", "se", "boot_se", "boot_p", "permutation_p"]
        return pd.DataFrame(rows, columns=columns)

    def replicates(self):
        """Every replicate's effects as a numpy array (one row per
        replicate; ``.dtype.names`` are the effects), as the aggregator saw
        them. Needs ``keep_replicates=True`` in ``bootstrap``."""
        if self._replicates is None:
            raise MedsimError(
                "this fit kept no replicates; resample with bootstrap(..., keep_replicates=True)"
            )
        keys, values = self._replicates
        out = np.empty(values.shape[0], dtype=[(k, "f8") for k in keys])
        for j, k in enumerate(keys):
            out[k] = values[:, j]
        return out

    def plot(self, ax=None):
        """The bootstrap distribution of the indirect effect (a histogram of
        its first draws, up to 20,000), the estimate and the interval of
        :meth:`tidy`'s method. Needs matplotlib; returns the axes."""
        try:
            import matplotlib.pyplot as plt
        except ImportError as e:
            raise MedsimError(
                "fit.plot() needs matplotlib: pip install matplotlib (or medsim[plot])"
            ) from e
        draws = self._draws
        if self._replicates is not None and "indirect" in self._replicates[0]:
            draws = self._replicates[1][:, self._replicates[0].index("indirect")]
        if len(draws) == 0:
            raise MedsimError("no bootstrap draws to plot: resample first with fit.bootstrap()")
        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        ax.hist(np.asarray(draws), bins=60, color="#8fb3d9", edgecolor="white")
        est = self._summary["effects"]["indirect"]["estimate"]
        ax.axvline(est, color="black", lw=1.5, label=f"a*b = {est:.4g}")
        method, intervals = self._interval_columns(None, None)
        for i in intervals:
            if i["effect"] == "indirect":
                ax.axvspan(i["lower"], i["upper"], color="#d98f8f", alpha=0.25,
                           label=f"{method} {100 * i['level']:g}%")
        ax.set_xlabel("indirect effect (a*b)")
        ax.set_ylabel("replicates")
        ax.legend(frameon=False)
        return ax
