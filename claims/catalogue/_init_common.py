"""Shared pieces of the at-initialization claims FWD, BWD, GRAD, NTK-ID and NTK-CONV (also used by PERT
for the (m, L, regime) grid, the recipes and the network).

The network is h_l = relu(W h_{l-1} + A X_l), f(x) = B h_L at its random initialization
W_ij ~ N(0, 2/m), A_ij ~ N(0, 2/m), B_i ~ N(0, 1) (SPEC section 1). A control cell changes the variance
of W to N(0, w_var/m) (w_var = 4: exploding, w_var = 1: vanishing).

Cells: :func:`grid_cells` gives ``{"m", "L", "regime"}`` over the profile's grid (the width-dependent
claims run threshold cells instead, :mod:`claims.threshold_cell`); control cells add ``"control": True`` and
``"w_var"`` and sit at the profile's largest width (so that a failure is the broken initialization, not
finite width) and the shortest profile length >= 4 (at L = 2 the variance of W barely enters: h_1 =
relu(A X_1) does not see W).

Examples: a recipe fixes the data (n sequences of the cell's L and regime; d, directions and seeds drawn
by hypothesis) and the init seed; the target plays no part and is pinned to random labels (seed 0).

Two-sided ratio rules (FWD, BWD, GRAD): r_inf / c <= r <= c r_inf; the measured constant of an example is
c_meas = max(r_max / r_inf, r_inf / r_min) and the margin c_meas / c (<= 1 passes). Ratios use
:func:`rnn_core.numerics.guarded_ratio` (0 / 0 is NaN: no information, left out; x / 0 is +inf: a violation).

The cost model is :mod:`claims.catalogue._cost`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from claims.base import Context, finite_or_nan
from rnn_core.numerics import guarded_ratio

#: the network precision of the claims whose rule is a ratio with a wide tolerance (FWD, BWD, GRAD: a
#: factor 2; NTK-CONV: 0.1 of the diagonal): float32 networks move the norms and kernel entries behind
#: them by ~1e-6 relative (python -m benchmarks precision, quick grid; docs/SPEC_NOTES.md); Grams, kernels
#: and eigenvalues stay float64. Claims near a singularity (lambda_min, solves, n_eps fits, training to
#: 1e-4) keep the float64 default.
RATIO_PRECISION = "float32"

__all__ = [
    "PAPER_W_VAR",
    "RATIO_PRECISION",
    "control_length",
    "grid_cells",
    "control_cells",
    "w_std_scale",
    "is_control",
    "recipes_for",
    "inputs",
    "network",
    "two_sided",
    "layer_series",
    "network_memory",
    "derived_seed",
]

#: the paper's W variance times m: W_ij ~ N(0, 2/m)
PAPER_W_VAR = 2.0


def control_length(profile: Any, minimum: int = 4) -> int:
    """The shortest profile length >= ``minimum`` (the longest length when none is that long)."""
    longer = [L for L in profile.lengths if L >= minimum]
    return min(longer) if longer else max(profile.lengths)


def grid_cells(profile: Any, extra: dict | None = None) -> list[dict]:
    """Every (m, L, regime) of the profile, ``extra`` keys added to each cell."""
    out = []
    for regime in profile.regimes:
        for L in profile.lengths:
            for m in profile.widths:
                cell = dict(extra or {})
                cell.update({"m": int(m), "L": int(L), "regime": regime})
                out.append(cell)
    return out


def control_cells(profile: Any, w_var: float, extra: dict | None = None, *, with_width: bool = True) -> list[dict]:
    """One control cell per regime: W ~ N(0, w_var/m), largest width, shortest length >= 4."""
    L = control_length(profile)
    out = []
    for regime in profile.regimes:
        cell = dict(extra or {})
        if with_width:
            cell["m"] = int(profile.max_width)
        cell.update({"L": int(L), "regime": regime, "control": True, "w_var": float(w_var)})
        out.append(cell)
    return out


def is_control(cell: dict) -> bool:
    return bool(cell.get("control", False))


def w_std_scale(cell: dict) -> float:
    """``init_params``' w_std_scale for the cell: W ~ N(0, w_var/m) means scale sqrt(w_var / 2)."""
    w_var = float(cell.get("w_var", PAPER_W_VAR))
    if not (math.isfinite(w_var) and w_var > 0):
        raise ValueError(f"cell w_var must be a finite number > 0, got {cell.get('w_var')!r}")
    return math.sqrt(w_var / PAPER_W_VAR)


def recipes_for(cell: dict, n: int):
    """Recipes for one cell: n sequences of the cell's L and regime; d, directions and seeds free
    (hypothesis shrinks them toward d = 2, sphere, seed 0); the target pinned (unused here)."""
    from claims.strategies import recipes
    from rnn_core.targets import TargetSpec

    return recipes(n=int(n), L=int(cell["L"]), regime=cell["regime"], target=TargetSpec(family="random", seed=0))


def inputs(recipe: Any, ctx: Context) -> torch.Tensor:
    """The recipe's training inputs X, (n, L, d) float64, on the context's device."""
    from rnn_core.data import make_dataset

    X, _ = make_dataset(recipe)
    return X.to(device=ctx.device, dtype=torch.float64)


def network(cell: dict, recipe: Any, ctx: Context, *, m: int | None = None, seed: int | None = None):
    """The cell's network at init: width ``m`` (default the cell's), seed ``seed`` (default the recipe's
    init seed), W variance from the cell (the paper's 2/m unless a control says otherwise), ctx.dtype."""
    import rnn_core

    return rnn_core.init_params(
        int(cell["m"] if m is None else m),
        recipe.d,
        seed=int(recipe.init_seed if seed is None else seed),
        device=ctx.device,
        dtype=ctx.dtype,
        w_std_scale=w_std_scale(cell),
    )


def derived_seed(*parts: int) -> int:
    """A 32-bit seed hashed from integers (numpy SeedSequence): distinct parts give unrelated streams."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def two_sided(r: torch.Tensor, limit: float, c: float) -> tuple[bool | None, float, float, float, float]:
    """Check limit / c <= r <= c * limit for every entry of ``r`` that is not NaN (NaN entries are 0/0).

    Returns (ok, margin, c_measured, r_min, r_max); ok is None (inconclusive) when no entry is defined.
    c_measured = max(r_max / limit, limit / r_min): the smallest c that would make the rule hold.
    """
    vals = r[~torch.isnan(r)]
    if vals.numel() == 0:
        return None, math.nan, math.nan, math.nan, math.nan
    r_min = float(vals.min())
    r_max = float(vals.max())
    up = r_max / limit
    down = float(guarded_ratio(limit, r_min, zero_by_zero=math.nan))
    c_meas = max(up, down)
    return bool(c_meas <= c), c_meas / c, c_meas, r_min, r_max


def ratio_reason(name: str, r_min: float, r_max: float, low: float, high: float) -> str:
    """Why a two-sided example failed: which side of [low, high] the ratio left, by how much."""
    if r_max > high:
        return f"{name} max {r_max:.3g} > {high:g}"
    return f"{name} min {r_min:.3g} < {low:g}"


def layer_series(r: torch.Tensor) -> list[dict]:
    """Per layer l = 1..L: the min and the max over the batch of the (n, L) ratio r (2 L rows)."""
    rows = []
    for l in range(r.shape[1]):
        col = r[:, l]
        col = col[~torch.isnan(col)]
        if col.numel() == 0:
            continue
        rows.append({"l": l + 1, "stat": "min", "ratio": finite_or_nan(col.min())})
        rows.append({"l": l + 1, "stat": "max", "ratio": finite_or_nan(col.max())})
    return rows


def network_memory(m: int, n: int, L: int, *, bytes_per: int = 8) -> int:
    """Peak memory of one network evaluation, roughly: W (m^2), the init's row block (1024 m), the
    forward / backward tensors (about 6 (L+1) n m: h, g, deltas and the NTK's contiguous copies) and the
    kernels (n^2 L)."""
    est = bytes_per * (m * m + 1024 * m + 6 * (L + 1) * n * m) + 8 * (4 * n * n + 2 * (n * L) ** 2)
    return int(est * 1.25) + (1 << 20)
