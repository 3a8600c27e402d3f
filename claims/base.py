"""The declarative pieces of a claim: what it states, how one example is measured, and its cells.

A *claim* operationalizes one lemma or theorem (for the built-in catalogue: of Wang, Shen, Hu, Cao,
NeurIPS 2021). A *cell* is one grid point of the claim (a JSON-safe dict such as
``{"m": 256, "L": 4, "regime": "unit"}``); a cell whose dict carries ``"control": True`` is a negative
control and must end ``fails``. An *example* is one hypothesis-drawn recipe (data, target and seeds)
evaluated in a cell; :mod:`claims.verdict` turns a cell's examples into its verdict by a sequential
test. ``docs/CLAIM_AUTHORING.md`` is the guide for writing one.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Callable, Mapping

from claims.schema import cell_key

__all__ = ["Outcome", "Context", "Claim", "NotAsserted", "cell_key", "finite_or_nan", "PRECISIONS", "MODULE_NAMES"]

#: network dtypes a claim may declare (kernels, eigenvalues and solves are float64 in every case)
PRECISIONS: tuple[str, ...] = ("float64", "float32")


@dataclass(frozen=True)
class Outcome:
    """The result of one example in one cell.

    ok: True (the pass rule holds), False (it fails) or None (inconclusive for this example, e.g. a
        sample-complexity curve with fewer than four finite points); inconclusive examples do not move
        the sequential test.
    margin: measured / bound for rules of the form ``measured <= bound`` (<= 1 passes); for two-sided
        rules the worse of the two ratios. NaN where it is undefined.
    measured: JSON-safe scalars of this example (aggregated over examples by the engine).
    series: tidy rows for the report's figures, e.g. ``{"omega": 1e-3, "stat": "r_h", "value": 0.01}``.
    constants: measured constants (the smallest constant that would make the rule hold), keyed like
        the claim's ``declared`` dict.
    reason: for ok None or False, a short why (e.g. "training did not fit: loss ratio 0.3")
    """

    ok: bool | None
    margin: float
    measured: dict[str, Any] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)
    constants: dict[str, float] = field(default_factory=dict)
    reason: str = ""


@dataclass(frozen=True)
class NotAsserted:
    """``must_hold``'s answer for a cell the SPEC expects to hold that the suite does not assert; ``reason``
    says why (the report shows "not asserted, because ..."; docs/SPEC_NOTES.md has the evidence). False
    in a boolean context, like a finding: the cell is not asserted."""

    reason: str

    def __post_init__(self) -> None:
        if not isinstance(self.reason, str) or not self.reason.strip():
            raise ValueError(f"NotAsserted needs a non-empty reason, got {self.reason!r}")

    def __bool__(self) -> bool:
        return False


@dataclass(frozen=True)
class Context:
    """Where and how an example runs: the torch device, the network dtype, the profile."""

    device: Any  # torch.device
    profile: Any  # claims.profiles.Profile
    dtype: Any = None  # torch.dtype of the networks; None means torch.float64

    def __post_init__(self) -> None:
        if self.dtype is None:
            import torch

            object.__setattr__(self, "dtype", torch.float64)


#: Claim field -> the name a claim module defines it under, for :meth:`Claim.from_module` (a module's
#: ``figure`` becomes the one-element ``figures``)
MODULE_NAMES: dict[str, str] = {
    "cells": "cells", "strategy": "strategy", "evaluate": "evaluate", "must_hold": "must_hold",
    "memory_bytes": "memory_bytes", "cost": "cost", "search": "search", "settings": "SETTINGS",
    "figures": "figure",
}


def _always(cell: dict, profile: Any) -> bool:
    return True


def _no_estimate(cell: dict, profile: Any) -> int:
    return 0


def _unit_cost(cell: dict, profile: Any) -> float:
    return 1.0


@dataclass(frozen=True)
class Claim:
    """One executable claim.

    Prose (each piece once; ``rnnclaims list`` and the report show it): title, operationalizes,
    statement, pass_rule, negative_control, expected.

    cells(profile) -> list of cell dicts (JSON-safe; controls carry ``"control": True``).
    strategy(cell, profile) -> a hypothesis SearchStrategy of recipes for one cell.
    evaluate(cell, recipe, ctx) -> :class:`Outcome` of one example.
    must_hold(cell, profile) -> True: the suite asserts "holds" (CI and ``--strict`` fail otherwise);
        False: the cell is a finding (the SPEC does not expect it to hold); :class:`NotAsserted` (reason):
        the SPEC expects it to hold but the suite does not assert it, for the reason given (shown in the
        report as "not asserted, because ..."; every such narrowing is in docs/SPEC_NOTES.md with its
        evidence).
        Control cells are always asserted to fail; must_hold is not asked for them.
    memory_bytes(cell, profile) -> peak bytes of one example (the memory guard).
    cost(cell, profile) -> seconds of one example on one CPU core at the profile's settings, roughly
        (the scheduler submits expensive cells first, shards balance by it, the ETA weighs by it).
    settings: per-profile settings ``{profile name: {...}}``; read them with :meth:`settings_for`, which
        raises on a profile the claim does not know (no silent fallback).
    delta, delta_1, alpha, beta: the sequential test (:mod:`claims.verdict`); delta_1 None is the SPEC
        default max(3 delta, delta + 0.2).
    inconclusive_unrelated: empty, or where docs/SPEC_NOTES.md shows, with measurements, that this
        claim's inconclusive examples do not go with failing; then its cells may hold with more than a
        third of their examples inconclusive (:data:`claims.verdict.INCONCLUSIVE_SHARE`).
    max_examples: caps the profile's example budget where one example is expensive.
    max_shrink: caps the profile's shrink budget (noisy statistics rarely shrink).
    precision: "float64", or "float32" when the claim's error budget allows float32 networks (the run
        uses float32 for it unless ``--dtype float64``); kernels and solves stay float64.
    figures: report figures of this claim: callables ``(claim_id, records, profile) -> Figure`` or
        "module:function" strings resolved by the report (so that plotting code need not be imported
        to run a claim).
    recipe_from_dict: rebuilds a recipe from its stored dict (default rnn_core.data.Recipe.from_dict).
    search(cell, ctx) -> claims.search.SearchProblem: the claim's objective on its cells of kind "search"
        (the margin against the pass rule as a score, its gradient, the projection onto the constraint
        set); None for claims that are not attacked by search.
    """

    id: str
    title: str
    operationalizes: str
    statement: str
    pass_rule: str
    negative_control: str
    expected: str
    axes: tuple[str, ...]
    declared: dict[str, float]
    cells: Callable[[Any], list[dict]]
    strategy: Callable[[dict, Any], Any]
    evaluate: Callable[[dict, Any, Context], Outcome]
    delta: float = 0.1
    delta_1: float | None = None
    alpha: float = 0.05
    beta: float = 0.05
    inconclusive_unrelated: str = ""
    must_hold: Callable[[dict, Any], bool | NotAsserted] = _always
    memory_bytes: Callable[[dict, Any], int] = _no_estimate
    cost: Callable[[dict, Any], float] = _unit_cost
    settings: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    max_examples: int | None = None
    max_shrink: int | None = None
    precision: str = "float64"
    figures: tuple[Any, ...] = ()
    recipe_from_dict: Callable[[dict], Any] | None = None
    search: Callable[[dict, Any], Any] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str) or not self.id or self.id.upper() != self.id or "/" in self.id \
                or self.id.startswith((".", "_")):
            raise ValueError(f"claim id must be a non-empty upper-case file-name-safe string, got {self.id!r}")
        from claims.verdict import TestPlan

        TestPlan.of(self.delta, self.delta_1, self.alpha, self.beta)  # raises naming the bad parameter
        if not isinstance(self.inconclusive_unrelated, str):
            raise ValueError(f"claim {self.id}: inconclusive_unrelated must be a string (a pointer to the "
                             f"evidence in docs/SPEC_NOTES.md, or empty), got {self.inconclusive_unrelated!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"claim {self.id}: precision must be one of {PRECISIONS}, got {self.precision!r}")
        for name in ("max_examples", "max_shrink"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
                raise ValueError(f"claim {self.id}: {name} must be None or an integer >= 0, got {value!r}")
        if self.max_examples == 0:
            raise ValueError(f"claim {self.id}: max_examples must be >= 1")
        if not isinstance(self.figures, tuple):
            raise ValueError(f"claim {self.id}: figures must be a tuple")

    @classmethod
    def from_module(cls, module: str | ModuleType, **fields: Any) -> "Claim":
        """The claim whose behaviour a module defines under the names of :data:`MODULE_NAMES`: the
        functions ``cells``, ``strategy``, ``evaluate`` and, where the module has them, ``must_hold``,
        ``memory_bytes``, ``cost``, ``search``, ``figure`` (its report figure) and the dict ``SETTINGS``.
        ``fields`` give the prose and everything else, and win over the module's names. Called at the
        bottom of the module as ``Claim.from_module(__name__, id=..., ...)``."""
        namespace = vars(sys.modules[module] if isinstance(module, str) else module)
        found = {name: namespace[attr] for name, attr in MODULE_NAMES.items() if attr in namespace}
        if "figures" in found:
            found["figures"] = (found["figures"],)
        return cls(**{**found, **fields})

    def settings_for(self, profile: Any) -> Mapping[str, Any]:
        """This claim's settings under ``profile`` (a Profile or its name).

        Unknown profiles raise ``ValueError`` naming the profiles the claim knows."""
        name = getattr(profile, "name", profile)
        if name not in self.settings:
            known = ", ".join(self.settings) or "(none)"
            raise ValueError(f"claim {self.id} has no settings for profile {name!r}; it knows: {known}")
        return self.settings[name]

    def plan(self, profile: Any):
        """The cell's sequential test under ``profile``: the claim's delta, delta_1, alpha, beta, the
        profile's example budget capped by :attr:`max_examples`, and the bound on the inconclusive share
        (none where :attr:`inconclusive_unrelated` says why)."""
        from claims.verdict import INCONCLUSIVE_SHARE, TestPlan

        budget = int(profile.examples)
        if self.max_examples is not None:
            budget = min(budget, self.max_examples)
        share = None if self.inconclusive_unrelated else INCONCLUSIVE_SHARE
        return TestPlan.of(self.delta, self.delta_1, self.alpha, self.beta, budget, share)

    def expectation(self, cell: dict, profile: Any) -> tuple[str | None, str | None]:
        """``(expect, not_asserted)`` for one cell: expect is "fails" for a control, "holds" where the
        suite asserts the claim, None for a finding; not_asserted is the reason of a :class:`NotAsserted`
        answer (why a cell the SPEC expects to hold is not asserted) or None."""
        if cell.get("control", False):
            return "fails", None
        answer = self.must_hold(cell, profile)
        if isinstance(answer, NotAsserted):
            return None, answer.reason
        if isinstance(answer, str):
            raise TypeError(f"claim {self.id}: must_hold returned the string {answer!r}; return "
                            "claims.base.NotAsserted(reason) for a cell that is not asserted, True or False otherwise")
        return ("holds" if answer else None), None


def finite_or_nan(x: float) -> float:
    """A float that JSON can hold: inf and NaN become NaN (serialized as null by the store)."""
    x = float(x)
    return x if math.isfinite(x) else math.nan
