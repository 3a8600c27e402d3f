"""The one pass of rnn_core.model, and everything built on it, against rnn_core.reference.

Two kinds of reference, both independent of the pass:
- the oracle (:func:`rnn_core.reference.explicit_pass`): h_l and f by a plain per-sequence loop,
  delta_l = df/dg_l and grad_W f by torch.autograd. The pass must give the same h_l, f, delta_l and
  grad_W f = sum_l delta_l h_{l-1}^T to 1e-12 relative in float64: the pass forms the same sums of
  products with other groupings (row-stacked matmuls, the mask read from h instead of g), a few ulps
  of the results' size at these shapes (measured ~1e-15), while a wrong mask, transpose, index or
  scale moves them at O(1);
- the straightforward baselines (time-major loops, full Grams, explicit GD) that the benchmarks
  time: the NTK features, the structured empirical NTK (every panel blocking, the symmetric and the
  cross kernel) and GD trajectories equal them to 1e-12 relative, for the same reason (measured: at
  most ~1e-14 relative after 20 GD steps), so 1e-12 has two orders of margin.
"""

from __future__ import annotations

import math

import pytest
import torch

import rnn_core
import rnn_core.ntk as ntk_mod
from rnn_core import reference as ref
from rnn_core.data import make_inputs
from rnn_core.ntk import gram_kernel, ntk_features
from rnn_core.train import loss_gradient

REL = 1e-12  # float64 reordering only; see the module docstring


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    den = float(b.abs().max()) if b.numel() else 0.0
    num = float((a.double() - b.double()).abs().max()) if b.numel() else 0.0
    return num / den if den > 0 else num


def _problem(n, L, m, regime="unnormalized", seed=0, d=3):
    X = make_inputs(n, L, d, regime=regime, seed=seed)
    p = rnn_core.init_params(m, d, seed=seed + 1)
    return p, X


SHAPES = [(1, 1, 4), (5, 1, 8), (4, 2, 16), (7, 3, 24), (9, 6, 33), (3, 17, 20)]


@pytest.mark.parametrize("n, L, m", SHAPES)
@pytest.mark.parametrize("activation", ["relu", "step"])
def test_the_pass_equals_the_autograd_oracle(n, L, m, activation):
    p, X = _problem(n, L, m)
    oracle = ref.explicit_pass(p, X, activation=activation)
    run = rnn_core.forward(p, X, activation=activation)
    assert _rel(run.hidden_states(), oracle.hidden[:, 1:]) <= REL
    assert _rel(run.out, oracle.out) <= REL
    assert _rel(rnn_core.backward_deltas(p, run), oracle.deltas) <= REL  # delta_1..delta_L
    assert _rel(run.deltas, oracle.deltas[:, 1:]) <= REL and _rel(run.h_prev, oracle.hidden[:, 1:L]) <= REL
    assert _rel(rnn_core.per_example_grad_W(p, X, activation=activation), oracle.grad_W) <= REL
    if activation == "relu" and L >= 2:  # the comparison is not of zeros
        assert float(oracle.grad_W.abs().max()) > 0 and float(oracle.deltas[:, 0].abs().max()) > 0
    else:  # the step's derivative is 0 a.e.; at L = 1, h_0 = 0 and W never acts
        assert torch.count_nonzero(rnn_core.per_example_grad_W(p, X, activation=activation)) == 0


@pytest.mark.parametrize("n, L, m", SHAPES)
def test_the_pass_equals_the_time_major_baseline(n, L, m):
    p, X = _problem(n, L, m, seed=4)
    run, fr = rnn_core.forward(p, X), ref.forward_reference(p, X)
    assert _rel(run.hidden_states(), fr.hidden[1:].transpose(0, 1)) <= REL
    assert _rel(run.out, fr.out) <= REL
    assert _rel(rnn_core.backward_deltas(p, run), ref.backward_deltas_reference(p, fr).transpose(0, 1)) <= REL


def test_the_perturbation_term_at_omega_zero_is_the_unperturbed_pass_exactly():
    # omega = 0 adds 0 * Delta h to every step: the perturbed rows must be bit for bit the rows of W
    p, X = _problem(5, 6, 32, regime="unit", seed=2)
    R = torch.randn(32, 32, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    pp = rnn_core.perturbed_pass(p, X, 0.0, R=R)
    run = rnn_core.backward(p, rnn_core.forward(p, X))
    assert torch.equal(pp.hidden_states(), run.hidden_states()) and torch.equal(pp.deltas, run.deltas)
    assert torch.equal(pp.out, run.out)


def test_the_perturbation_term_equals_the_pass_of_the_explicit_matrix():
    # dense and rank-one rows against the same pass run on W' = W + omega Delta built as a matrix
    p, X = _problem(3, 5, 24, regime="unit", seed=3)
    g = torch.Generator().manual_seed(1)
    R = torch.randn(24, 24, generator=g, dtype=torch.float64) / 24**0.5
    U, V = torch.randn(3, 24, generator=g, dtype=torch.float64), torch.randn(3, 24, generator=g, dtype=torch.float64)
    omega = torch.tensor([0.3, 0.05, 0.2], dtype=torch.float64)
    rank_one = torch.tensor([False, True, True])
    pp = rnn_core.perturbed_pass(p, X, omega, R=R, U=U, V=V, rank_one=rank_one)
    for k in range(3):
        Wk = p.W + omega[k] * (torch.outer(U[k], V[k]) if rank_one[k] else R)
        explicit = ref.explicit_pass(p, X[k : k + 1], Wk)
        assert _rel(pp.hidden_states()[k], explicit.hidden[0, 1:]) <= REL
        assert _rel(pp.deltas[k], explicit.deltas[0, 1:]) <= REL
        assert _rel(pp.out[k], explicit.out[0]) <= REL
        assert _rel(pp.hidden_states()[k], ref.explicit_pass(p, X[k : k + 1]).hidden[0, 1:]) > 1e-3  # it moved


@pytest.mark.parametrize("n, L, m", [s for s in SHAPES if s[1] >= 2])
def test_ntk_features_equal_reference(n, L, m):
    p, X = _problem(n, L, m, regime="unit")
    deltas, h_prev = ntk_features(p, X)
    deltas_ref, h_prev_ref = ref.features_reference(p, X)
    assert deltas.shape == deltas_ref.shape == (n, L - 1, m) and deltas.is_contiguous() and h_prev.is_contiguous()
    assert _rel(deltas, deltas_ref) <= REL and _rel(h_prev, h_prev_ref) <= REL


# Panel blockings: (rows, cols) in feature rows. (1, 1) gives one sequence per panel and per column
# block; (L-1, 2(L-1)) one by two; large values a single panel; odd values partial last panels.
PANELS = [(1, 1), ("L-1", "2(L-1)"), (5, 13), (10_000, 10_000)]


@pytest.mark.parametrize("n, L, m", [(9, 2, 16), (11, 4, 24), (6, 7, 40)])
@pytest.mark.parametrize("rows, cols", PANELS)
def test_structured_ntk_equals_reference_for_every_blocking(monkeypatch, n, L, m, rows, cols):
    p, X = _problem(n, L, m, regime="normalized", seed=2)
    X2 = make_inputs(n + 4, L, 3, regime="unnormalized", seed=3)
    w_steps = L - 1
    size = {"L-1": w_steps, "2(L-1)": 2 * w_steps}
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
    deltas, h_prev = ntk_features(p32, X)
    exact = gram_kernel(deltas.double(), h_prev.double(), None, None, 64)
    # gram_dtype=float64 upcasts first: the same float64 arithmetic on the same numbers
    assert _rel(gram_kernel(deltas, h_prev, None, None, 64, gram_dtype=torch.float64), exact) <= REL
    # float32 Grams: ~1e-7 relative per Gram entry (24-bit mantissa, sums of m = 64 products), far
    # below 1e-4, but far above float64 rounding: the test can tell the two paths apart
    fast = gram_kernel(deltas, h_prev, None, None, 64)
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
    grad_ref = torch.einsum("lni,lnj->ij", d[1:] * r_ref[None, :, None], fw1.hidden[1:-1])
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
