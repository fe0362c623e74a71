"""pyfixest's formula grammar, as far as medsim's models go.

``"y ~ x1 + x2 | fe1 + fe2"``: the outcome, the regressors (the treatment
among them; the others are controls) and up to two fixed effects (the unit,
then the period). ``"y ~ controls | fe1 + fe2 | x ~ z1 + z2"``: the treatment
x instrumented by z1, z2 (two-stage least squares), as pyfixest writes IV;
``"y ~ x + controls | fe1 + fe2 | m ~ z"``: the mediator m instrumented in
the outcome equation (which of the two the caller's ``mediator=`` says).
``0`` as the fixed-effects part means none; ``| city + province^year`` is
unit effects and province-by-year effects.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._medsim import MedsimError

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")


@dataclass
class Formula:
    outcome: str
    regressors: list[str]
    fixed_effects: list[str] = field(default_factory=list)
    endogenous: str | None = None
    instruments: list[str] = field(default_factory=list)


def _terms(text: str, formula: str, where: str) -> list[str]:
    terms = [t.strip() for t in text.split("+")]
    if any(t == "" for t in terms):
        raise MedsimError(
            f"formula {formula!r}: an empty term in {where} ('+' with nothing on one side)"
        )
    for t in terms:
        if not _NAME.match(t) and t not in ("0", "1"):
            raise MedsimError(
                f"formula {formula!r}: {t!r} in {where} is not a column name; medsim's "
                "formulas take column names joined by '+' (transform columns in the "
                "data frame first)"
            )
    return terms


def parse(formula: str) -> Formula:
    """Parse ``formula``; a :class:`MedsimError` says what is wrong and where."""
    if not isinstance(formula, str):
        raise MedsimError(f"a formula is a string, not {type(formula).__name__}")
    parts = [p.strip() for p in formula.split("|")]
    if len(parts) > 3:
        raise MedsimError(
            f"formula {formula!r}: at most three parts, 'y ~ x | fixed effects | x ~ z'"
        )
    main = parts[0]
    if main.count("~") != 1:
        raise MedsimError(f"formula {formula!r}: the first part needs one '~' (y ~ x + controls)")
    lhs, rhs = (s.strip() for s in main.split("~"))
    if not lhs:
        raise MedsimError(f"formula {formula!r}: no outcome before '~'")
    outcome = _terms(lhs, formula, "the outcome")
    if len(outcome) != 1:
        raise MedsimError(f"formula {formula!r}: one outcome before '~', not {len(outcome)}")
    regressors = [] if rhs == "" else [t for t in _terms(rhs, formula, "the regressors") if t != "1"]
    if "0" in regressors:
        raise MedsimError(
            f"formula {formula!r}: '0' (no intercept) has no meaning here; the fixed "
            "effects take the intercept's place"
        )
    fixed: list[str] = []
    if len(parts) >= 2:
        if parts[1] == "":
            raise MedsimError(f"formula {formula!r}: an empty fixed-effects part after '|'")
        fixed = []
        for t in (t.strip() for t in parts[1].split("+")):
            # An interacted effect, GROUP^period (city + province^year).
            if t.count("^") == 1:
                sides = [s.strip() for s in t.split("^")]
                _terms(" + ".join(sides), formula, "the fixed effects")
                fixed.append("^".join(sides))
            else:
                fixed.extend(x for x in _terms(t, formula, "the fixed effects") if x != "0")
        if any(t == "1" for t in fixed):
            raise MedsimError(f"formula {formula!r}: '1' is not a fixed effect")
        if len(fixed) > 2:
            raise MedsimError(
                f"formula {formula!r}: at most two fixed effects, the unit and the period "
                f"(got {', '.join(fixed)})"
            )
    endogenous = None
    instruments: list[str] = []
    if len(parts) == 3:
        iv = parts[2]
        if iv.count("~") != 1:
            raise MedsimError(
                f"formula {formula!r}: the instruments' part is 'x ~ z1 + z2' (the "
                "instrumented treatment or mediator, then its instruments)"
            )
        left, right = (s.strip() for s in iv.split("~"))
        endo = _terms(left, formula, "the instrumented part") if left else []
        if len(endo) != 1:
            raise MedsimError(
                f"formula {formula!r}: exactly one instrumented variable (the treatment "
                "or the mediator) before '~' in the instruments' part"
            )
        if not right:
            raise MedsimError(f"formula {formula!r}: no instruments after '~' in the last part")
        endogenous = endo[0]
        instruments = _terms(right, formula, "the instruments")
    if not regressors and endogenous is None:
        raise MedsimError(f"formula {formula!r}: no regressors after '~'")
    seen: set[str] = set()
    for t in [outcome[0], *regressors, *([endogenous] if endogenous else []), *instruments]:
        if t in seen:
            raise MedsimError(f"formula {formula!r}: {t!r} appears twice")
        seen.add(t)
    return Formula(outcome[0], regressors, fixed, endogenous, instruments)
