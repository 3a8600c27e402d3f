"""The core's fast paths equal the straightforward reference implementations (rnn_core.reference).

Forward, backward deltas, the NTK features, the structured empirical NTK (every panel blocking, the
symmetric and the cross kernel) and GD trajectories are compared with the implementations the core had
before its fast paths, in float64, to 1e-12 relative: the fast paths change the order of a few float64
operations (strided instead of contiguous matmuls, the residual folded into delta_L, a fused
W <- W - eta D^T H update, the block sums in another order), which moves results by a few ulps
(measured: at most ~1e-14 relative after 20 GD steps), so 1e-12 has two orders of margin and still
catches any wrong index, mask or scale, which moves results at O(1).
"""

from __future__ import annotations

import math

import pytest
import torch

import rnn_core
import rnn_core.ntk as ntk_mod
from rnn_core import reference as ref
from rnn_core.data import make_inputs
from rnn_core.model import backward_deltas_tm
from rnn_core.ntk import gram_kernel, ntk_features
from rnn_core.train import loss_gradient

REL = 1e-12  # float64 reordering only; see the module docstring


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(b.abs().max())
    num = float((a.double() - b.double()).abs().max())
    return num / den if den > 0 else num


def _problem(n, L, m, regime="unnormalized", seed=0, d=3):
    X = make_inputs(n, L, d, regime=regime, seed=seed)
    p = rnn_core.init_params(m, d, seed=seed + 1)
    return p, X


SHAPES = [(1, 1, 4), (5, 1, 8), (4, 2, 16), (7, 3, 24), (9, 6, 33), (3, 17, 20)]


@pytest.mark.parametrize("n, L, m", SHAPES)
@pytest.mark.parametrize("activation", ["relu", "step"])
def test_forward_and_backward_equal_reference(n, L, m, activation):
    p, X = _problem(n, L, m)
    fw, fr = rnn_core.forward(p, X, activation=activation), ref.forward_reference(p, X, activation=activation)
    assert _rel(fw.h_tm, fr.h_tm) <= REL
    assert _rel(fw.g_tm, fr.g_tm) <= REL
    assert _rel(fw.out, fr.out) <= REL
    assert _rel(backward_deltas_tm(p, fw), ref.backward_deltas_reference(p, fr)) <= REL
    assert _rel(rnn_core.backward_deltas(p, fw), ref.backward_deltas_reference(p, fr).permute(1, 0, 2)) <= REL


@pytest.mark.parametrize("n, L, m", [s for s in SHAPES if s[1] >= 2])
def test_ntk_features_equal_reference(n, L, m):
    p, X = _problem(n, L, m, regime="unit")
    D, Hp = ntk_features(p, X)
    Dr, Hpr = ref.features_reference(p, X)
    assert D.shape == Dr.shape == (n, L - 1, m) and D.is_contiguous() and Hp.is_contiguous()
    assert _rel(D, Dr) <= REL and _rel(Hp, Hpr) <= REL


# Panel blockings: (rows, cols) in feature rows. (1, 1) gives one sequence per panel and per column
# block; (L-1, 2(L-1)) one by two; large values a single panel; odd values partial last panels.
PANELS = [(1, 1), ("Lp", "2Lp"), (5, 13), (10_000, 10_000)]


@pytest.mark.parametrize("n, L, m", [(9, 2, 16), (11, 4, 24), (6, 7, 40)])
@pytest.mark.parametrize("rows, cols", PANELS)
def test_structured_ntk_equals_reference_for_every_blocking(monkeypatch, n, L, m, rows, cols):
    p, X = _problem(n, L, m, regime="normalized", seed=2)
    X2 = make_inputs(n + 4, L, 3, regime="unnormalized", seed=3)
    Lp = L - 1
    size = {"Lp": Lp, "2Lp": 2 * Lp}
    monkeypatch.setattr(ntk_mod, "_PANEL_ROWS", size.get(rows, rows))
    monkeypatch.setattr(ntk_mod, "_PANEL_COLS", size.get(cols, cols))
    H, H2 = rnn_core.empirical_ntk(p, X), rnn_core.empirical_ntk(p, X, X2)
    monkeypatch.undo()
    assert _rel(H, ref.empirical_ntk_structured_reference(p, X)) <= REL
    assert _rel(H2, ref.empirical_ntk_structured_reference(p, X, X2)) <= REL
    assert H.dtype == H2.dtype == torch.float64
    assert torch.equal(H, H.T)  # mirrored upper triangle: exactly symmetric


def test_ntk_of_length_one_and_step_activation_is_zero():
    p, X = _problem(6, 1, 16)
    assert torch.count_nonzero(rnn_core.empirical_ntk(p, X)) == 0  # h_0 = 0: W never acts
    p, X = _problem(6, 4, 16)
    H = rnn_core.empirical_ntk(p, X, activation="step")  # relu' of the step is 0 a.e.: every delta is 0
    assert H.shape == (6, 6) and torch.count_nonzero(H) == 0


def test_gram_in_float64_from_float32_features_equals_float64_gram_of_the_same_numbers():
    p32 = rnn_core.init_params(64, 3, seed=4, dtype=torch.float32)
    X = make_inputs(7, 5, 3, regime="unit", seed=4)
    D, Hp = ntk_features(p32, X)
    exact = gram_kernel(D.double(), Hp.double(), None, None, 64)
    # gram_dtype=float64 upcasts first: the same float64 arithmetic on the same numbers
    assert _rel(gram_kernel(D, Hp, None, None, 64, gram_dtype=torch.float64), exact) <= REL
    # float32 Grams: ~1e-7 relative per Gram entry (24-bit mantissa, sums of m = 64 products), far
    # below 1e-4, but far above float64 rounding: the test can tell the two paths apart
    fast = gram_kernel(D, Hp, None, None, 64)
    assert 1e-12 < _rel(fast, exact) < 1e-4


@pytest.mark.parametrize("n, L, m", [(6, 4, 32), (12, 8, 48), (5, 2, 20), (4, 1, 8)])
def test_gd_trajectory_equals_reference(n, L, m):
    p, X = _problem(n, L, m, regime="unit", seed=5)
    y = torch.randn(n, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    eta = 0.5 * rnn_core.train.default_eta(p, X) if L >= 2 else 0.1
    steps = 20
    res = rnn_core.train_gd(p, X, y, eta=eta, steps=steps, record_every=1)
    W_ref, losses_ref = ref.train_gd_reference(p, X, y, eta=eta, steps=steps)
    assert res.steps == steps and res.ts == list(range(steps + 1))
    if L >= 2:
        assert _rel(res.W_T - p.W, W_ref - p.W) <= REL  # the displacement, not W (which hides it)
        assert losses_ref[-1] < losses_ref[0]  # the run moves: the comparison is not of two no-ops
    else:
        assert torch.equal(res.W_T, p.W) and torch.equal(W_ref, p.W)
    for a, b in zip(res.losses, losses_ref):
        assert abs(a - b) <= REL * b


def test_loss_gradient_equals_reference_gradient():
    p, X = _problem(7, 5, 24, regime="unnormalized", seed=7)
    y = torch.randn(7, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    f0 = rnn_core.forward(p, X).out
    W1 = p.W + 0.05 * torch.randn(24, 24, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    p1 = p.with_W(W1)
    loss, grad, r = loss_gradient(p1, X, y, f0)
    fw1 = ref.forward_reference(p1, X)
    r_ref = fw1.out - f0 - y
    d = ref.backward_deltas_reference(p1, fw1)
    grad_ref = torch.einsum("lni,lnj->ij", d[1:] * r_ref[None, :, None], fw1.h_tm[1:-1])
    assert _rel(r, r_ref) <= REL and abs(float(loss) - 0.5 * float(r_ref @ r_ref)) <= REL * float(loss)
    assert _rel(grad, grad_ref) <= REL


def test_float32_network_runs_every_fast_path_and_returns_float64_kernels():
    X = make_inputs(6, 5, 3, regime="unit", seed=10)
    y = torch.linspace(-1, 1, 6, dtype=torch.float64)
    p64 = rnn_core.init_params(128, 3, seed=11)
    p32 = rnn_core.init_params(128, 3, seed=11, dtype=torch.float32)
    H64, H32 = rnn_core.empirical_ntk(p64, X), rnn_core.empirical_ntk(p32, X)
    assert H32.dtype == torch.float64 and torch.equal(H32, H32.T)
    # float32 network: ~1e-7 relative per hidden entry, amplified by at most L = 5 steps; 1e-4 is loose
    # but a float32 path that dropped a term or a mask would be off by O(1)
    assert _rel(H32, H64) < 1e-4
    eta = 0.5 * rnn_core.train.default_eta(p64, X)
    r64 = rnn_core.train_gd(p64, X, y, eta=eta, steps=10, record_every=10)
    r32 = rnn_core.train_gd(p32, X, y, eta=eta, steps=10, record_every=10)
    assert r32.W_T.dtype == torch.float64  # the float64 master copy of a float32 network's weights
    assert _rel(r32.W_T - p64.W, r64.W_T - p64.W) < 1e-3  # float32 gradients, 10 steps
    assert r32.losses[-1] == pytest.approx(r64.losses[-1], rel=1e-3)


def test_float32_training_keeps_updates_smaller_than_the_float32_spacing_of_w():
    X = make_inputs(6, 4, 3, regime="unit", seed=12)
    y = torch.linspace(-1, 1, 6, dtype=torch.float64)
    p64 = rnn_core.init_params(64, 3, seed=13)
    p32 = rnn_core.init_params(64, 3, seed=13, dtype=torch.float32)
    eta = 1e-6 * rnn_core.train.default_eta(p64, X)
    r64 = rnn_core.train_gd(p64, X, y, eta=eta, steps=20, record_every=20)
    r32 = rnn_core.train_gd(p32, X, y, eta=eta, steps=20, record_every=20)
    # the premise: most per-step updates are below half the float32 spacing of their entry of W, so a
    # float32 W would round them away and not move at all
    w = p32.W.abs()
    spacing = (torch.nextafter(w, torch.full_like(w, math.inf)) - w).double()
    step = (r64.W_T - p64.W).abs() / 20
    assert float((step < 0.5 * spacing).double().mean()) > 0.9
    # float32 forward/backward: gradients to ~1e-6 relative; the float64 master copy keeps that accuracy
    assert _rel(r32.W_T - p32.W.double(), r64.W_T - p64.W) < 1e-4
    assert r32.w_dist[-1] == pytest.approx(r64.w_dist[-1], rel=1e-4)
