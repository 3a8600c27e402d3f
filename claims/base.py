"""The declarative pieces of a claim: what it states, how one example is measured, and its cells.

A *claim* operationalizes one lemma or theorem of Wang, Shen, Hu, Cao (NeurIPS 2021). A *cell* is one
grid point of the claim (a JSON-safe dict such as ``{"m": 256, "L": 4, "regime": "unit"}``); a cell
whose dict carries ``"control": True`` is the claim's negative control and must not come out ``holds``.
An *example* is one hypothesis-drawn :class:`rnn_core.Recipe` (data, target and seeds) evaluated in a
cell; :func:`claims.verdict.decide_verdict` turns the examples of a cell into its verdict.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["Outcome", "Context", "Claim", "cell_key"]


@dataclass(frozen=True)
class Outcome:
    """The result of one example in one cell.

    ok: True (the pass rule holds), False (it fails) or None (inconclusive for this example, e.g. a
        sample-complexity curve with fewer than four finite points).
    margin: measured / bound for rules of the form ``measured <= bound`` (<= 1 passes); for two-sided
        rules the worse of the two ratios. NaN where it is undefined.
    measured: JSON-safe scalars of this example (aggregated over examples by the runner).
    series: tidy rows for the report's figures, e.g. ``{"omega": 1e-3, "stat": "r_h", "value": 0.01}``.
    constants: measured constants (the smallest constant that would make the rule hold), keyed like
        the claim's ``declared`` dict.
    """

    ok: bool | None
    margin: float
    measured: dict[str, Any] = field(default_factory=dict)
    series: list[dict[str, Any]] = field(default_factory=list)
    constants: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Where and how an example runs: the torch device, the network dtype, the profile."""

    device: torch.device
    profile: Any  # claims.profiles.Profile; typed loosely to avoid an import cycle
    dtype: torch.dtype = torch.float64


def _always(cell: dict, profile: Any) -> bool:
    return True


def _no_estimate(cell: dict, profile: Any) -> int:
    return 0


@dataclass(frozen=True)
class Claim:
    """One executable claim of the catalogue (SPEC section 4)."""

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
    strategy: Callable[[dict, Any], Any]  # (cell, profile) -> SearchStrategy[Recipe]
    evaluate: Callable[[dict, Any, Context], Outcome]  # (cell, recipe, ctx) -> Outcome
    delta: float = 0.1
    must_hold: Callable[[dict, Any], bool] = _always
    memory_bytes: Callable[[dict, Any], int] = _no_estimate
    # Rebuilds a recipe from its stored ``to_dict()`` form (reproduce, shrinking reports). None means
    # the default, ``rnn_core.data.Recipe.from_dict`` (see :func:`claims.registry.recipe_from_dict`).
    recipe_from_dict: Callable[[dict], Any] | None = None
    # Caps the profile's shrink budget for this claim: shrinking a noisy statistic (a slope fitted over
    # every width) costs many evaluations at the widest network and rarely simplifies the recipe.
    max_shrink: int | None = None

    def __post_init__(self) -> None:
        if not self.id or self.id.upper() != self.id:
            raise ValueError(f"claim id must be a non-empty upper-case string, got {self.id!r}")
        if not 0.0 <= self.delta < 1.0:
            raise ValueError(f"claim {self.id}: delta must lie in [0, 1), got {self.delta}")


def cell_key(params: dict) -> str:
    """A stable, file-name-safe key for a cell: sorted ``name=value`` pairs joined by ``__``."""
    parts = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value)
        text = f"{name}={value}"
        parts.append("".join(ch if ch.isalnum() or ch in "=.-_" else "_" for ch in text))
    return "__".join(parts) or "default"


def finite_or_nan(x: float) -> float:
    """A float that JSON can hold: inf and NaN become NaN (serialized as null by the store)."""
    x = float(x)
    return x if math.isfinite(x) else math.nan
