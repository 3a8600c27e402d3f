"""NTK-ID: the empirical NTK is the Gram matrix of the network's own gradients (SPEC section 1).

Math. For the RNN h_l = relu(W h_{l-1} + A X_l), f(x) = B h_L, the empirical NTK of the W-trained
network is, by definition,

    H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F,

and the structured computation (rnn_core.empirical_ntk) evaluates it as
(1/m) sum_{l, l'} <delta_l(x), delta_{l'}(x')> <h_{l-1}(x), h_{l'-1}(x')> from the backward deltas and
the hidden states, cross-time terms l != l' included. The identity is exact, so it is checked against
an independent computation of the gradients: the Jacobian of f with respect to W by automatic
differentiation (torch.func, on a separately written forward pass), contracted as J J'^T / m.
Every fast path the other claims rely on (forward, backward deltas, the Gram step, the normalization)
enters the structured side only.

Measured per example: err = max_ij |H_struct - H_autograd| / max_ij |H_autograd|, the relative error of
the whole matrix, in float64. Pass rule err <= 1e-9: float64 rounding of both computations leaves
about 1e-14 at these sizes, so the tolerance sits five orders above rounding and far below any
structural error (a wrong constant, a dropped term or a wrong backward pass moves entries by O(1)).

Negative control: the same comparison for the kernel with the cross-time terms dropped,
(1/m) sum_l <delta_l, delta_l'> <h_{l-1}, h_{l-1}'>, at L >= 3 (at L = 2 there is one term and nothing to
drop): those terms are not zero at finite width (SPEC section 1), so the control must fail.
"""

from __future__ import annotations

import math

import torch

from claims.base import Claim, Context, Outcome
from claims.catalogue import _cost
from claims.catalogue import _init_common as common
from claims.registry import register

__all__ = ["CLAIM", "SETTINGS", "TOLERANCE", "relative_error"]

#: the pass rule's bound on the relative error of H_m (five orders above float64 rounding of ~1e-14)
TOLERANCE = 1e-9
#: seconds vmap takes to trace the forward pass, once per example
_TRACE_S = 0.06

#: n sequences per example; widths up to max_width (the autograd Jacobian holds n m^2 numbers)
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 3, "max_width": 64},
    "quick": {"n": 3, "max_width": 128},
    "standard": {"n": 4, "max_width": 512},
    "full": {"n": 4, "max_width": 1024},
}


def relative_error(H: torch.Tensor, ref: torch.Tensor) -> float:
    """max_ij |H - ref| / max_ij |ref| in float64 (+inf when ref is 0 and H is not, 0 when both are)."""
    H, ref = H.to(torch.float64), ref.to(torch.float64)
    scale = float(ref.abs().max())
    diff = float((H - ref).abs().max())
    if scale == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / scale


def _no_cross_time(p, X: torch.Tensor) -> torch.Tensor:
    """(1/m) sum_l <delta_l, delta_l'> <h_{l-1}, h_{l-1}'>: the kernel without its cross-time terms."""
    from rnn_core.ntk import ntk_features

    deltas, h_prev = (t.to(torch.float64) for t in ntk_features(p, X))  # delta_l, h_{l-1}: (n, L-1, m)
    return torch.einsum("ikm,jkm,ikn,jkn->ij", deltas, deltas, h_prev, h_prev) / p.m


def _widths(profile) -> list[int]:
    cap = CLAIM.settings_for(profile)["max_width"]
    return [m for m in profile.widths if m <= cap] or [min(profile.widths)]


def cells(profile) -> list[dict]:
    out = [{"m": m, "L": int(L), "regime": r} for r in profile.regimes for L in profile.lengths for m in _widths(profile)]
    L_ctl = common.control_length(profile, minimum=3)
    out += [{"m": max(_widths(profile)), "L": int(L_ctl), "regime": r, "control": True} for r in profile.regimes]
    return out


def strategy(cell: dict, profile):
    return common.recipes_for(cell, CLAIM.settings_for(profile)["n"])


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    import rnn_core

    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    ref = rnn_core.empirical_ntk_reference(p, X)
    H = _no_cross_time(p, X) if common.is_control(cell) else rnn_core.empirical_ntk(p, X)
    err = relative_error(H, ref)
    ok = err <= TOLERANCE
    reason = "" if ok else f"relative error {err:.3g} of H_m against the autograd Gram > {TOLERANCE:g}"
    return Outcome(ok=ok, margin=err / TOLERANCE, measured={"rel_err": err, "h_scale": float(ref.abs().max())},
                   constants={"rel_err": err}, reason=reason)


def must_hold(cell: dict, profile) -> bool:
    """An exact identity: asserted in every cell (every width, length and regime)."""
    return not common.is_control(cell)


def memory_bytes(cell: dict, profile) -> int:
    m, L, n = int(cell["m"]), int(cell["L"]), CLAIM.settings_for(profile)["n"]
    # the autograd Jacobian (n m^2) and vmap's per-sequence copies of the forward pass, plus one network
    return 8 * (6 * n * m * m) + common.network_memory(m, n, L)


def cost(cell: dict, profile) -> float:
    m, L, n = int(cell["m"]), int(cell["L"]), CLAIM.settings_for(profile)["n"]
    # jacrev: one reverse pass per sequence over the L steps (about 6 L m^2 flops each, in vmap, each
    # streaming W), the n x n contraction of the m^2-long Jacobian rows, the structured kernel
    flops = 6.0 * n * L * m * m + 2.0 * n * n * m * m + _cost.network_flops(m, n, L, backward=True, ntk=True)
    streamed = (n + 1) * _cost.network_bytes(m, L, backward=True) + 8.0 * n * m * m
    # vmap traces the forward pass once per example
    return _cost.seconds(flops, streamed, draws=m * m) + _TRACE_S


CLAIM = register(
    Claim.from_module(
        __name__,
        id="NTK-ID",
        title="The empirical NTK is the Gram of the gradients",
        operationalizes="the definition of the empirical NTK (SPEC section 1): H_m(x, x') = (1/m) "
        "<grad_W f(x), grad_W f(x')>_F, computed from the deltas and hidden states with the cross-time terms",
        statement="The structured empirical NTK equals (1/m) J J^T with J the Jacobian of f with respect to W "
        "taken by automatic differentiation of an independently written forward pass: max_ij |H_struct - "
        "H_autograd| / max_ij |H_autograd| <= 1e-9 (float64 rounding leaves ~1e-14).",
        pass_rule="relative error of the whole matrix <= 1e-9; margin error / 1e-9. An exact identity: "
        "delta = 0 (one failing example fails the cell) and delta_1 = 0.5, so 5 passing examples hold it "
        "(an implementation is either right on every input or wrong on almost all)",
        negative_control="the kernel without its cross-time terms l != l' at the shortest length >= 3 (not zero "
        "at finite width, so it is not the Gram of the gradients)",
        expected="holds in every cell (an exact identity; asserted everywhere)",
        axes=("m", "L", "regime"),
        declared={"rel_err": TOLERANCE},
        delta=0.0,
        delta_1=0.5,
        max_shrink=4,
    )
)
