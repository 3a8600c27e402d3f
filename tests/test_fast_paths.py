"""Fast paths against slow references: the structured NTK and its blocking, the one-pass infinite kernel,
the structured training gradient; the benchmarks' baselines (rnn_core.reference) compute the same kernels."""


import pytest
import torch

import rnn_core
import rnn_core.ntk as ntk_mod
from rnn_core.reference import straightforward_ntk, train_gd_autograd, two_pass_ntk


def _unit(n, L, d, seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, L, d, generator=g, dtype=torch.float64)
    return X / X.norm(dim=2, keepdim=True)


def _rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


@pytest.mark.parametrize("n, L, m", [(5, 3, 16), (9, 6, 24)])
def test_structured_ntk_blocking_matches_straightforward(monkeypatch, n, L, m):
    X, X2 = _unit(n, L, 3, 0), _unit(n + 2, L, 3, 1)
    p = rnn_core.init_params(m, 3, seed=2)
    ref = straightforward_ntk(p, X)
    # Tiny panels (one sequence by two) force many off-diagonal blocks and the mirrored lower triangle.
    monkeypatch.setattr(ntk_mod, "_PANEL_ROWS", L - 1)
    monkeypatch.setattr(ntk_mod, "_PANEL_COLS", 2 * (L - 1))
    blocked = rnn_core.empirical_ntk(p, X)
    blocked_x2 = rnn_core.empirical_ntk(p, X, X2)
    monkeypatch.undo()
    # 1e-12: the same sums in a different order, float64.
    assert _rel(blocked, ref) < 1e-12
    assert _rel(blocked_x2, rnn_core.empirical_ntk_reference(p, X, X2)) < 1e-10
    assert torch.equal(blocked, blocked.T)


def test_float32_network_gives_float64_kernel_close_to_float64():
    X = _unit(6, 4, 3, 0)
    p64 = rnn_core.init_params(256, 3, seed=0)
    p32 = rnn_core.init_params(256, 3, seed=0, dtype=torch.float32)
    H64, H32 = rnn_core.empirical_ntk(p64, X), rnn_core.empirical_ntk(p32, X)
    assert H32.dtype == torch.float64
    # float32 network: about 7 significant digits per entry of the Grams; 1e-4 leaves room for the sums.
    assert _rel(H32, H64) < 1e-4


def test_one_pass_infinite_kernel_matches_two_pass():
    X = _unit(40, 9, 3, 3)
    # 1e-12: the same recursion, different association of the products P_l.
    assert _rel(rnn_core.infinite_ntk(X), two_pass_ntk(X)) < 1e-12
    # L = 1: h_0 = 0, so W never acts and both forms give exactly zero.
    X1 = _unit(7, 1, 3, 3)
    assert torch.count_nonzero(rnn_core.infinite_ntk(X1)) == 0
    assert torch.count_nonzero(two_pass_ntk(X1)) == 0


def test_infinite_kernel_row_blocks_and_cross_kernel_agree():
    X = _unit(50, 6, 3, 4)
    full = rnn_core.infinite_ntk(X, block_rows=1000)
    for br in (1, 7, 50):
        assert _rel(rnn_core.infinite_ntk(X, block_rows=br), full) < 1e-13
    # The cross kernel of X with itself computes the same entries without the symmetric shortcut; they
    # agree to the arccos floor (an off-by-eps cosine near 1 moves theta by ~sqrt(eps) ~ 1e-8).
    assert _rel(rnn_core.infinite_ntk(X[:13], X), full[:13]) < 1e-7


def test_training_step_matches_autograd():
    X = _unit(6, 4, 3, 5)
    y = torch.linspace(-1, 1, 6, dtype=torch.float64)
    p = rnn_core.init_params(32, 3, seed=1)
    res = rnn_core.train_gd(p, X, y, eta=0.01, steps=3, record_every=3)
    W_ag = train_gd_autograd(p, X, y, 0.01, 3)
    # 1e-10: the same three float64 updates, structured vs autograd gradient.
    assert _rel(res.W_T - p.W, W_ag - p.W) < 1e-10


def test_prefix_kernels_in_one_pass_equal_separate_kernels():
    from rnn_core.kernels import infinite_ntk_prefixes

    X, X2 = _unit(30, 9, 3, 6), _unit(11, 9, 3, 7)
    for l, K in infinite_ntk_prefixes(X, lengths=[2, 5, 9], block_rows=7).items():
        # 1e-13: the same recursion stopped at step l; only the row blocking differs.
        assert _rel(K, rnn_core.infinite_ntk(X[:, :l])) < 1e-13
    for l, K in infinite_ntk_prefixes(X, X2, lengths=[3, 9]).items():
        assert torch.equal(K, rnn_core.infinite_ntk(X[:, :l], X2[:, :l]))
    with pytest.raises(ValueError, match="lengths must be non-empty integers in 1..L = 9"):
        infinite_ntk_prefixes(X, lengths=[0, 3])
