"""BWD: backward stability at initialization (SPEC section 4, row BWD).

Math. With delta_l = df/dg_l (SPEC section 1): delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1},
D_l = diag(1[g_l > 0]). At init ||D_L B||^2 / m -> 1/2, and each backward step W^T (variance 2/m)
followed by the mask D_l keeps the second moment, so ||delta_l||^2 / m -> 1/2 for every l. The claim
bounds r_l(x) = ||delta_l(x)||^2 / m in [1/4, 1] = [1/2 / c, 1/2 c] with c = 2.

Computation. ``rnn_core.forward`` and ``rnn_core.model.backward_deltas_tm`` over the recipe's n
sequences; the (n, L) ratio matrix; the two-sided rule of :mod:`claims.catalogue._init_common` with
r_inf = 1/2, c = 2. The control's W ~ N(0, 1/m) halves the second moment per backward step:
||delta_l||^2 / m -> (1/2)^(L - l + 1), whose limit reaches the lower bound 1/4 at l = L - 1 and is
below it from L = 3 on (the control cells sit at the shortest length >= 4).
"""

from __future__ import annotations

import torch

from claims.base import Claim, Context, Outcome
from claims.catalogue import _init_common as common
from claims.registry import register

__all__ = [
    "CLAIM",
    "SETTINGS",
    "C_DECLARED",
    "LIMIT",
    "CONTROL_W_VAR",
    "backward_ratios",
    "cells",
    "strategy",
    "evaluate",
    "must_hold",
    "memory_bytes",
    "cost",
]

C_DECLARED = 2.0
LIMIT = 0.5  # lim ||delta_l||^2 / m
CONTROL_W_VAR = 1.0  # W ~ N(0, 1/m): vanishing backward pass

#: n sequences per example
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 6},
    "quick": {"n": 8},
    "standard": {"n": 4},
    "full": {"n": 16},
}


def backward_ratios(p, X: torch.Tensor) -> torch.Tensor:
    """(n, L) matrix of ||delta_l(x_i)||^2 / m for l = 1..L, float64."""
    from rnn_core.model import backward_deltas_tm, forward

    fw = forward(p, X.to(p.dtype))
    deltas = backward_deltas_tm(p, fw)  # (L, n, m), deltas[l-1] = delta_l
    return (deltas.to(torch.float64).pow(2).sum(dim=2) / p.m).T


def cells(profile) -> list[dict]:
    return common.stability_cells(profile, CONTROL_W_VAR)


def strategy(cell: dict, profile):
    return common.recipes_for(cell, CLAIM.settings_for(profile)["n"])


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    r = backward_ratios(p, X)
    ok, margin, c_meas, r_min, r_max = common.two_sided(r, LIMIT, C_DECLARED)
    reason = "" if ok is not False else common.ratio_reason("||delta_l||^2 / m", r_min, r_max, 0.25, 1.0)
    measured = {"ratio_min": r_min, "ratio_max": r_max, "c": c_meas}
    return Outcome(ok=ok, margin=margin, measured=measured, series=common.layer_series(r),
                   constants={"c": c_meas}, reason=reason)


def must_hold(cell: dict, profile) -> bool:
    return common.largest_width_l2(cell, profile)


def memory_bytes(cell: dict, profile) -> int:
    return common.network_memory(int(cell["m"]), CLAIM.settings_for(profile)["n"], int(cell["L"]))


def cost(cell: dict, profile) -> float:
    m, L, n = int(cell["m"]), int(cell["L"]), CLAIM.settings_for(profile)["n"]
    return common.seconds(common.network_flops(m, n, L, backward=True), draws=m * m)


CLAIM = register(
    Claim(
        id="BWD",
        title="Backward stability at initialization",
        operationalizes="backward stability at init: the backward deltas neither vanish nor explode",
        statement="For all layers l and every input x, 1/4 <= ||delta_l(x)||^2 / m <= 1 at random "
        "initialization (infinite-width limit 1/2), delta_l = df/dg_l.",
        pass_rule="every ratio ||delta_l||^2 / m over the n inputs and l = 1..L lies in [1/4, 1] "
        "(measured constant c = max(2 ratio_max, 1 / (2 ratio_min)) <= 2); margin c / 2",
        negative_control="W ~ N(0, 1/m) (vanishing): ||delta_l||^2 / m -> (1/2)^(L-l+1), below 1/4 from "
        "L = 3 on (at the bound at L = 2); run at the largest width and the shortest length >= 4",
        expected="holds at the profile's largest width for L = 2 (must hold); the deltas are products of "
        "L - l random factors, so small widths and long lengths fail (findings)",
        axes=("m", "L", "regime"),
        declared={"c": C_DECLARED},
        delta=0.1,
        cells=cells,
        strategy=strategy,
        evaluate=evaluate,
        must_hold=must_hold,
        memory_bytes=memory_bytes,
        cost=cost,
        settings=SETTINGS,
        figures=("reports.figures:backward_layers_figure",),
        precision=common.RATIO_PRECISION,
        max_shrink=4,  # failing cells are findings at small width / long length: a few shrink steps suffice
    )
)
