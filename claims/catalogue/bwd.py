"""BWD: backward stability at initialization.

Statement (SPEC section 4, row BWD). With the backward deltas of SPEC section 1,

    delta_L = D_L B^T,   delta_l = D_l W^T delta_{l+1},   D_l = diag(1[g_l > 0]),

(delta_l = df/dg_l), at random initialization (W, A ~ N(0, 2/m), B ~ N(0, 1)) and every input x, for all
l = 1..L:

    1/4 <= ||delta_l||^2 / m <= 1        (infinite-width limit 1/2)

(||D_L B||^2 / m -> 1/2, and each backward step W^T (variance 2/m) followed by the ReLU mask D_l keeps the
second moment). Written as a factor around the limit, 1/2 / c <= ||delta_l||^2 / m <= 1/2 * c with c = 2.

Measured per example: the (n, L) matrix ||delta_l(x_i)||^2 / m; ratio_min, ratio_max; the measured
constant c = max(ratio_max / (1/2), (1/2) / ratio_min) against the declared c = 2; series per layer l:
min and max over the batch ({"l", "stat", "ratio"}).

Pass rule (one example): every ratio in [1/4, 1]. Margin c_measured / 2.

Negative control: W ~ N(0, 1/m) (``w_std_scale=sqrt(1/2)``), vanishing gradients: each backward step
halves the second moment, ||delta_l||^2 / m -> (1/2)^(L - l + 1). Where it starts failing (measured with
n = 6, 12-30 seeds per point, all regimes): at L = 2 the smallest ratio is that of delta_1, whose limit is
exactly the lower bound 1/4, so the minimum over the batch falls just below it (0.16-0.29; the control
fails in 83-87% of examples at m = 256 and 2048, but by a hair, and ever more narrowly as m grows: it is
not a usable control there); from L = 3 on delta_1 has limit 1/8 and the control fails in every example
(minima 0.08-0.16 at L = 3, 0.04-0.08 at L = 4). The control cells run at the largest width and the
shortest profile length >= 4.

Expected (SPEC "Expectation for CI"): holds at the profile's largest width for L = 2 (must hold). At
small width and long length it is a finding: the deltas are products of L - l random factors (measured:
m = 256, L = 4, n = 8: 10-17% of examples fail; m = 2048, L = 16: ratios 0.21-0.71, still inside).
"""

from __future__ import annotations

import torch

from claims.base import Claim, Context, Outcome
from claims.catalogue import _init_common as common
from claims.registry import register

__all__ = ["CLAIM", "C_DECLARED", "LIMIT", "CONTROL_W_VAR", "backward_ratios", "evaluate"]

C_DECLARED = 2.0
LIMIT = 0.5  # lim ||delta_l||^2 / m
CONTROL_W_VAR = 1.0  # W ~ N(0, 1/m): vanishing backward pass


def backward_ratios(p, X: torch.Tensor) -> torch.Tensor:
    """(n, L) matrix of ||delta_l(x_i)||^2 / m for l = 1..L, float64."""
    from rnn_core.model import backward_deltas_tm, forward

    fw = forward(p, X)
    deltas = backward_deltas_tm(p, fw)  # (L, n, m), deltas[l-1] = delta_l
    return (deltas.to(torch.float64).pow(2).sum(dim=2) / p.m).T


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    X = common.inputs(recipe, ctx)
    p = common.network(cell, recipe, ctx)
    r = backward_ratios(p, X)
    ok, margin, c_meas, r_min, r_max = common.two_sided(r, LIMIT, C_DECLARED)
    measured = {"ratio_min": r_min, "ratio_max": r_max, "c": c_meas}
    return Outcome(ok=ok, margin=margin, measured=measured, series=common.layer_series(r), constants={"c": c_meas})


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
        "L = 3 on (borderline at L = 2); run at the largest width and the shortest length >= 4",
        expected="holds at the profile's largest width for L = 2 (must hold); fails at small width and long "
        "length (a finding)",
        axes=("m", "L", "regime"),
        declared={"c": C_DECLARED},
        delta=0.1,
        cells=common.cells_with_controls(CONTROL_W_VAR),
        strategy=common.strategy,
        evaluate=evaluate,
        must_hold=common.must_hold_largest_width_l2,
        memory_bytes=common.cell_memory,
    )
)
