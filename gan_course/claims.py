"""Claims as data: what a chapter claims about its own runs is declared once, and every run checks it.

A chapter's lab module holds a ``CLAIMS`` list. Each ``Claim`` names the paper's statement it tests and compares
recorded quantities (keys of the chapter's ``results`` dict) with a relation::

    CLAIMS = [
        Claim("nonsaturating_gradient", "Sec. 3: -log D(G(z)) 'provides much stronger gradients early in learning'",
              "grad_ratio_nonsat_over_sat", ">=", 10),
        Claim("minimax_keeps_more_modes", "Arjovsky & Bottou 2017: the non-saturating loss is mode-seeking",
              "toy_modes_minimax", ">", "toy_modes_nonsaturating"),
    ]

The notebook computes its quantities, checks them (``check(CLAIMS, results)``), stores the outcome with
``results["claims"] = records(...)`` for ``paths.record_result`` (and so for ``benchmarks/RESULTS.md``) and shows the
table "claim · what it tests · measured · held?" with ``show(results["claims"])``; ``report`` is the plain-text
form for scripts. The prose around the table speaks of what the table shows.

A quantity may be one number or a list with one number per seed. Then the claim compares **medians**, shows the
range, and, when both sides are lists of the same length (paired by seed), counts the seeds on which it held. A
claim that compares two arms is only called held when it was measured over at least ``MIN_SEEDS`` seeds; with fewer
it is shown as "held in this run (n seeds: too few to call)" (``held`` is then False and ``enough_seeds`` says
why), unless the claim is ``deterministic`` (no seed in it). A notebook's single run therefore shows which way its
run went; the claims over seeds are measured by ``benchmarks/claims.py`` and recorded in ``RESULTS.md``.
"""

from __future__ import annotations

import math
import operator
import statistics
from dataclasses import dataclass

from .notebook import markdown_table, show_table

__all__ = ["Claim", "Outcome", "MIN_SEEDS", "RELATIONS", "check", "report", "records", "markdown", "show"]

MIN_SEEDS = 3
RELATIONS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}


@dataclass(frozen=True)
class Claim:
    """``left relation factor * right``, on the medians when a side holds one value per seed.

    Args:
        name: a short identifier (``snake_case``), the claim's key in the results.
        paper: the statement it tests, with its section ("Sec. 3: ...").
        left: the recorded quantity on the left (a key of the results).
        relation: one of ``RELATIONS`` (``<``, ``<=``, ``>``, ``>=``).
        right: another recorded quantity (a key) or a number.
        factor: multiplies the right side (``left > 2 * right``: ``factor=2``).
        deterministic: the quantities do not depend on a seed (an integral, a closed form): one run decides it.
            Otherwise a claim is only called held when measured over at least ``MIN_SEEDS`` seeds.
    """

    name: str
    paper: str
    left: str
    relation: str
    right: str | float
    factor: float = 1.0
    deterministic: bool = False

    def __post_init__(self):
        if self.relation not in RELATIONS:
            raise ValueError(f"claim {self.name!r}: relation must be one of {sorted(RELATIONS)}, got "
                             f"{self.relation!r}")
        if not isinstance(self.right, (str, int, float)) or isinstance(self.right, bool):
            raise TypeError(f"claim {self.name!r}: right must be a quantity's name or a number, got "
                            f"{type(self.right).__name__}")

    @property
    def compares_arms(self) -> bool:
        """True when both sides are measured quantities (two arms, or two measurements), not a fixed bound."""
        return isinstance(self.right, str)

    def quantities(self) -> list[str]:
        return [self.left] + ([self.right] if self.compares_arms else [])


@dataclass(frozen=True)
class Side:
    """One side of a claim as measured: the values (one per seed), their median and range."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def __str__(self) -> str:
        if len(self.values) == 1:
            return _number(self.values[0])
        return (f"{_number(self.median)} [{_number(min(self.values))}, {_number(max(self.values))}] "
                f"({len(self.values)} seeds)")


@dataclass(frozen=True)
class Outcome:
    """A claim checked against one run's results: ``medians_hold`` says what the medians show, ``held`` whether
    that is a finding (None when a quantity was not measured; False with fewer than ``MIN_SEEDS`` seeds)."""

    claim: Claim
    left: Side | None = None
    right: Side | float | None = None
    medians_hold: bool | None = None
    seeds_held: tuple[int, int] | None = None       # (seeds on which it held, seeds compared), when several
    missing: tuple[str, ...] = ()                   # the quantities this run did not record
    undefined: tuple[str, ...] = ()                 # recorded, but NaN (switched off, or too few points)

    @property
    def seeds(self) -> int:
        """Seeds measured: the fewer of the two sides (0 when not measured)."""
        if self.left is None:
            return 0
        return min(len(self.left.values), len(self.right.values)) if isinstance(self.right, Side) else len(
            self.left.values)

    @property
    def enough_seeds(self) -> bool:
        return self.claim.deterministic or self.seeds >= MIN_SEEDS

    @property
    def held(self) -> bool | None:
        return None if self.medians_hold is None else self.medians_hold and self.enough_seeds

    @property
    def measured(self) -> str:
        if self.held is None:
            absent = [q for q in self.missing if q not in self.undefined]
            why = ([f"no {', '.join(absent)}"] if absent else []) + ([f"{', '.join(self.undefined)} NaN"]
                                                                     if self.undefined else [])
            return f"not measured in this run ({'; '.join(why)})"
        right = str(self.right) if isinstance(self.right, Side) else _number(self.right)
        factor = "" if self.claim.factor == 1 else f"{_number(self.claim.factor)} x "
        right_name = f"{self.claim.right} " if self.claim.compares_arms else ""
        return f"{self.claim.left} {self.left} {self.claim.relation} {factor}{right_name}{right}"

    @property
    def verdict(self) -> str:
        if self.held is None:
            return "not measured"
        if not self.enough_seeds:
            n = self.seeds
            state = "held" if self.medians_hold else "did not hold"
            return f"{state} in this run ({n} seed{'s' if n != 1 else ''}: too few to call, needs {MIN_SEEDS})"
        seeds = f" ({self.seeds_held[0]}/{self.seeds_held[1]} seeds)" if self.seeds_held else ""
        return ("yes" if self.held else "NO") + seeds


def _number(x: float) -> str:
    if isinstance(x, float) and not math.isfinite(x):
        return str(x)
    if float(x).is_integer() and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.3g}"


def _side(value, claim: Claim, key: str) -> Side:
    values = value if isinstance(value, (list, tuple)) else [value]
    try:
        values = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise TypeError(f"claim {claim.name!r}: quantity {key!r} must be a number or a list of numbers (one per "
                        f"seed), got {value!r}") from None
    if not values:
        raise ValueError(f"claim {claim.name!r}: quantity {key!r} is an empty list")
    return Side(values)


def _not_a_number(value) -> bool:
    """A quantity recorded as NaN (a measurement that was switched off, e.g. rFID with ``RFID_N = 0``) is not
    measured: comparing it would call every claim on it "not held"."""
    values = value if isinstance(value, (list, tuple)) else [value]
    return bool(values) and all(isinstance(v, float) and math.isnan(v) for v in values)


def check(claims, results: dict) -> list[Outcome]:
    """Check every claim against ``results`` (``{quantity: number or [number per seed]}``)."""
    names = [c.name for c in claims]
    if len(set(names)) != len(names):
        raise ValueError(f"claim names must be unique, got {names}")
    outcomes = []
    for claim in claims:
        undefined = tuple(q for q in claim.quantities() if q in results and _not_a_number(results[q]))
        missing = tuple(q for q in claim.quantities() if q not in results) + undefined
        if missing:
            outcomes.append(Outcome(claim, missing=missing, undefined=undefined))
            continue
        left = _side(results[claim.left], claim, claim.left)
        right = _side(results[claim.right], claim, claim.right) if claim.compares_arms else float(claim.right)
        compare = RELATIONS[claim.relation]
        medians_hold = compare(left.median, claim.factor * (right.median if isinstance(right, Side) else right))
        seeds_held = None
        if isinstance(right, Side) and len(left.values) == len(right.values) > 1:
            seeds_held = (sum(compare(a, claim.factor * b) for a, b in zip(left.values, right.values, strict=True)),
                          len(left.values))
        elif not isinstance(right, Side) and len(left.values) > 1:
            seeds_held = (sum(compare(a, claim.factor * right) for a in left.values), len(left.values))
        outcomes.append(Outcome(claim, left, right, medians_hold, seeds_held))
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    """The table a notebook prints: claim, the paper's statement, this run's numbers, held?"""
    rows = [("claim", "this run", "held?")] + [(o.claim.name, o.measured, o.verdict) for o in outcomes]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    lines = [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines += ["", "what each claim tests:"] + [f"  {o.claim.name}: {o.claim.paper}" for o in outcomes]
    return "\n".join(lines)


def records(outcomes: list[Outcome]) -> list[dict]:
    """The outcomes as JSON-ready rows, for ``results["claims"]`` and ``paths.record_result``."""
    rows = []
    for o in outcomes:
        rows.append(dict(name=o.claim.name, paper=o.claim.paper, measured=o.measured, verdict=o.verdict,
                         held=o.held, seeds=o.seeds))
    return rows


def _table(rows: list[dict]) -> dict:
    return {r["name"]: {"what it tests": r["paper"], "measured": r["measured"], "held?": r["verdict"]} for r in rows}


def markdown(rows: list[dict]) -> list[str]:
    """``records`` rows as the lines of a Markdown table (for ``benchmarks/RESULTS.md``)."""
    return markdown_table(_table(rows), first="claim").splitlines()


def show(rows: list[dict], title: str | None = None) -> str:
    """Display ``records`` rows as a Markdown table in a notebook (it wraps cleanly at any width)."""
    return show_table(_table(rows), first="claim", title=title)
