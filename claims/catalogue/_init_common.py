"""Shared pieces of the at-initialization claims FWD, BWD, GRAD and NTK-CONV (SPEC section 4).

These four claims look at the RNN h_l = relu(W h_{l-1} + A X_l), f(x) = B h_L at its random
initialization W_ij ~ N(0, 2/m), A_ij ~ N(0, 2/m), B_i ~ N(0, 1) (SPEC section 1). Their cells share one
grid: every (m, L, regime) of the profile, plus a few negative-control cells per regime that change the
variance of W to N(0, w_var/m) (w_var = 4: exploding, w_var = 1: vanishing; the paper's value is 2).

Cells
    ``{"m": m, "L": L, "regime": r}``; control cells add ``"control": True`` and ``"w_var"``. Control cells
    sit at the profile's largest width (where the paper's claim is expected to hold best, so a failure is
    the broken initialization and not finite width) and at the shortest profile length >= 4 (SPEC: the
    controls fail "once L >= 4" / "for larger L"; at L = 2 the W variance barely enters: h_1 = relu(A X_1)
    does not see W at all).

Examples
    A recipe fixes the data (n sequences of the cell's L and regime; d, directions and seeds are drawn by
    hypothesis) and the init seed. The target is irrelevant to these claims and is pinned to random labels
    (seed 0) so that hypothesis spends no draws or shrinking on it.

Two-sided ratio rules
    FWD, BWD and GRAD all bound a ratio r against its infinite-width limit r_inf from both sides by a
    factor c: r_inf / c <= r <= c r_inf (FWD: r = ||h_l||^2 / q_l, r_inf = 1, c = 2; BWD:
    r = ||delta_l||^2 / m, r_inf = 1/2, c = 2, i.e. [1/4, 1]; GRAD: r = ||grad_W f||_F^2 / (m H_inf(x, x)),
    r_inf = 1, c = 2). The measured constant of an example is the smallest c that makes it hold,
    c_meas = max(r_max / r_inf, r_inf / r_min), and the margin is c_meas / c (<= 1 passes).

Where the SPEC expects them to hold (``must_hold``): at the profile's largest width for L = 2 (SPEC
section 4, "Expectation for CI"). NTK-CONV qualifies this (see its module).
"""

from __future__ import annotations

import math
from typing import Any, Iterable

import numpy as np
import torch

from claims.base import Context, finite_or_nan

__all__ = [
    "PAPER_W_VAR",
    "N_PER_PROFILE",
    "n_for",
    "control_length",
    "grid_cells",
    "control_cells",
    "w_std_scale",
    "is_control",
    "must_hold_largest_width_l2",
    "strategy",
    "inputs",
    "network",
    "two_sided",
    "ratio",
    "layer_series",
    "memory_bytes",
    "derived_seed",
]

#: the paper's W variance times m: W_ij ~ N(0, 2/m)
PAPER_W_VAR = 2.0

#: sequences per example, per profile (small: these claims are about every input, not about n)
N_PER_PROFILE = {"smoke": 6, "quick": 8, "standard": 16, "full": 16}


def n_for(profile: Any) -> int:
    """Sequences per example under ``profile`` (profiles without an entry use min(16, n_default))."""
    return N_PER_PROFILE.get(profile.name, min(16, int(profile.n_default)))


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


def must_hold_largest_width_l2(cell: dict, profile: Any) -> bool:
    """SPEC section 4: finite-width claims must hold at the largest width of the profile for L = 2."""
    return (not is_control(cell)) and cell.get("L") == 2 and cell.get("m") == profile.max_width


def strategy(cell: dict, profile: Any):
    """Recipes for one cell: n from :data:`N_PER_PROFILE`, the cell's L and regime, d / directions /
    seeds free (hypothesis shrinks them toward d = 2, sphere, seed 0), target pinned (unused here)."""
    from claims.strategies import recipes
    from rnn_core.targets import TargetSpec

    return recipes(
        n=n_for(profile),
        L=int(cell["L"]),
        regime=cell["regime"],
        target=TargetSpec(family="random", seed=0),
    )


def inputs(recipe: Any, ctx: Context) -> torch.Tensor:
    """The recipe's training inputs X, (n, L, d) float64, on the context's device."""
    from rnn_core.data import make_dataset

    X, _ = make_dataset(recipe)
    return X.to(device=ctx.device, dtype=torch.float64)


def network(cell: dict, recipe: Any, ctx: Context, *, m: int | None = None, seed: int | None = None):
    """The cell's network at init: width ``m`` (default the cell's), seed ``seed`` (default the recipe's
    init seed), W variance from the cell (paper's 2/m unless a control says otherwise)."""
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


def ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num / den elementwise in float64 with the degenerate cases of SPEC section 2 guarded.

    den = 0 happens only for a zero prefix (all steps up to l are 0), where the network is exactly 0 too:
    0 / 0 is reported as NaN (no information; excluded from min / max), x / 0 with x > 0 as +inf (a
    genuine violation).
    """
    num = num.to(torch.float64)
    den = den.to(torch.float64)
    safe = torch.where(den > 0, den, torch.ones_like(den))
    out = num / safe
    out = torch.where(den > 0, out, torch.where(num > 0, torch.full_like(out, math.inf), torch.full_like(out, math.nan)))
    return out


def two_sided(r: torch.Tensor, limit: float, c: float) -> tuple[bool | None, float, float, float, float]:
    """Check limit / c <= r <= c * limit for every finite-or-inf entry of ``r`` (NaN entries are 0/0).

    Returns (ok, margin, c_measured, r_min, r_max); ok is None (inconclusive) when no entry is defined.
    c_measured = max(r_max / limit, limit / r_min): the smallest c that would make the rule hold.
    """
    vals = r[~torch.isnan(r)]
    if vals.numel() == 0:
        return None, math.nan, math.nan, math.nan, math.nan
    r_min = float(vals.min())
    r_max = float(vals.max())
    up = r_max / limit
    down = limit / r_min if r_min > 0 else math.inf
    c_meas = max(up, down)
    ok = bool(c_meas <= c)
    return ok, c_meas / c, c_meas, r_min, r_max


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


def memory_bytes(m: int, n: int, L: int, *, bytes_per: int = 8, widths: Iterable[int] | None = None) -> int:
    """Peak memory of one example, roughly: W (m^2), the init's row block (1024 m), the forward / backward
    tensors (about 6 (L+1) n m: h, g, deltas and the NTK's contiguous copies) and the kernels (n^2 L)."""
    ms = list(widths) if widths is not None else [m]
    worst = 0
    for w in ms:
        est = bytes_per * (w * w + 1024 * w + 6 * (L + 1) * n * w) + 8 * (4 * n * n + 2 * (n * L) ** 2)
        worst = max(worst, est)
    return int(worst * 1.25) + (1 << 20)


def cells_with_controls(control_w_var: float):
    """The cells of a stability claim: the full (m, L, regime) grid plus its W-variance controls."""

    def cells(profile: Any) -> list[dict]:
        return grid_cells(profile) + control_cells(profile, control_w_var)

    return cells


def cell_memory(cell: dict, profile: Any) -> int:
    """memory_bytes for one cell of a stability claim (n from the profile, the cell's m and L)."""
    return memory_bytes(cell["m"], n_for(profile), cell["L"])
