"""Tests of claims/catalogue/_sample_complexity.py: prefix kernels, growing kernels, n_eps, and the rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import rnn_core
from claims.catalogue._sample_complexity import (
    FLAT_GROWTH,
    NEps,
    PrefixKernels,
    censored_growth,
    complexity_rule,
    curve_summary,
    doubling_ratios,
    geometric_grid,
    n_eps,
    n_eps_curve,
    n_eps_table,
    prefix_ntks,
)
from rnn_core.data import Recipe, TargetSpec, make_inputs
from rnn_core.targets import make_target


@pytest.mark.parametrize("regime", ["normalized", "unit", "unnormalized"])
def test_prefix_ntks_equal_infinite_ntk_at_every_length(regime):
    X = make_inputs(40, 7, 3, regime=regime, seed=1)
    X2 = make_inputs(9, 7, 3, regime=regime, seed=2)
    # small blocks so that several row blocks, the mirrored lower triangle and the diagonal blocks are hit
    H = prefix_ntks(X, None, [2, 3, 5, 7], block_entries=200)
    H2 = prefix_ntks(X2, X, [2, 7], block_entries=100)
    for L, h in H.items():
        ref = rnn_core.infinite_ntk(X[:, :L])
        off = ~torch.eye(40, dtype=torch.bool)
        # off-diagonal: same float64 recursion, rounding only; diagonal: arccos near c = 1 loses half the
        # digits (SPEC section 2), so both implementations sit ~1e-8 from the exact (1/2) sum q_l
        assert torch.allclose(h[off], ref[off], rtol=1e-12, atol=1e-12 * float(ref.abs().max()))
        assert torch.allclose(h.diagonal(), rnn_core.infinite_ntk_diag(X[:, :L]), rtol=1e-6)
        assert torch.equal(h, h.T)
    for L, h in H2.items():
        ref = rnn_core.infinite_ntk(X2[:, :L], X[:, :L])
        assert torch.allclose(h, ref, rtol=1e-12, atol=1e-12 * float(ref.abs().max()))


def test_growing_kernels_equal_the_direct_kernels_at_every_size():
    X = make_inputs(60, 7, 3, regime="unnormalized", seed=1)
    T = make_inputs(9, 7, 3, regime="unnormalized", seed=2)
    pk = PrefixKernels(X, T, [2, 5, 7], block_entries=150)
    for n in (4, 8, 20, 33, 60):  # uneven steps: diagonal, off-diagonal and test blocks of several shapes
        pk.extend(n)
        for L in (2, 5, 7):
            ref = rnn_core.infinite_ntk(X[:n, :L])
            ref_t = rnn_core.infinite_ntk(T[:, :L], X[:n, :L])
            # the same elementwise recursion on the same pairs: rounding only (1e-13 of the largest entry)
            assert torch.allclose(pk.train(L, n), ref, rtol=0, atol=1e-13 * float(ref.abs().max()))
            assert torch.allclose(pk.test(L, n), ref_t, rtol=0, atol=1e-13 * float(ref_t.abs().max()))
            assert torch.equal(pk.train(L, n), pk.train(L, n).T)
            # self-pairs are computed with cosine exactly 1: the diagonal is (1/2) sum_{l<L} q_l to rounding
            assert torch.allclose(pk.train(L, n).diagonal(), rnn_core.infinite_ntk_diag(X[:n, :L]), rtol=1e-13)
    pk.extend(64 - 4, test=False)  # no-op sizes are fine; beyond the draw is an error
    with pytest.raises(ValueError):
        pk.extend(61)
    with pytest.raises(ValueError):
        pk.test(2, 61)


def test_geometric_grid_ratio_at_most_two():
    g = geometric_grid(4, 1000)
    assert g[0] == 4 and g[-1] == 1000
    assert all(b <= 2 * a and b > a for a, b in zip(g, g[1:]))
    with pytest.raises(ValueError):
        geometric_grid(4, 100, factor=3.0)


def _span_problem():
    L, d = 3, 2
    Xtr = make_inputs(256, L, d, regime="unit", seed=3)
    Xte = make_inputs(300, L, d, regime="unit", seed=4)
    Z = make_inputs(5, L, d, regime="unit", seed=5)
    c = torch.tensor([1.0, -2.0, 0.5, 1.5, -1.0], dtype=torch.float64)
    y = lambda X: rnn_core.infinite_ntk(X, Z) @ c  # noqa: E731
    g = torch.Generator().manual_seed(0)
    noise_tr = torch.randn(256, generator=g, dtype=torch.float64)
    noise_te = torch.randn(300, generator=g, dtype=torch.float64)
    return L, Xtr, Xte, {L: {"span": (y(Xtr), y(Xte)), "random": (noise_tr, noise_te)}}


def test_n_eps_recovers_a_target_in_the_kernel_span_and_never_random_labels():
    # y = H_inf(x, Z) c for a fixed set Z of 5 anchor sequences lies in the kernel's span: kernel
    # regression recovers it once n is moderately large, so n_eps is reached.
    L, Xtr, Xte, labels = _span_problem()
    res = n_eps_table(Xtr, Xte, labels, geometric_grid(4, 256))
    span, rnd = res["span"][L], res["random"][L]
    assert span.reached and span.n_eps <= 64, span
    assert span.mse_ratio[-1] <= 0.25
    # pure noise: the test MSE of an interpolant of noise is >= Var(y), so the threshold 0.25 is never met
    assert not rnd.reached and min(rnd.mse_ratio) > 0.5, rnd


def test_a_constant_target_is_an_error_not_an_unreached_n_eps():
    # X_1 = e_d for every sequence in the normalized regime: a target on X_1 alone is constant
    X = make_inputs(64, 3, 2, regime="normalized", seed=8)
    T = make_inputs(100, 3, 2, regime="normalized", seed=9)
    t = make_target(TargetSpec(family="additive", f="z2", positions=(1,), seed=1), 3, 2)
    with pytest.raises(ValueError, match="constant on the test inputs"):
        n_eps_table(X, T, {3: {"y": (t(X), t(T))}}, geometric_grid(4, 64))


def test_n_eps_table_in_memory_groups_equals_one_group():
    X = make_inputs(128, 6, 2, regime="unit", seed=8)
    T = make_inputs(200, 6, 2, regime="unit", seed=9)
    labels = {}
    for L in (2, 4, 6):
        t = make_target(TargetSpec(family="additive", f="z", positions=(L,), seed=1), L, 2)
        labels[L] = {"y": (t(X[:, :L]), t(T[:, :L]))}
    grid = geometric_grid(4, 128)
    one = n_eps_table(X, T, labels, grid)["y"]
    # a budget below one length's kernels: every length runs its own pass; same numbers to rounding
    split = n_eps_table(X, T, labels, grid, memory_budget=1)["y"]
    for L in (2, 4, 6):
        assert one[L].n_eps == split[L].n_eps and one[L].ns == split[L].ns
        assert np.allclose(one[L].mse_ratio, split[L].mse_ratio, rtol=1e-9)


def test_n_eps_api_on_a_recipe_matches_the_curve():
    spec = TargetSpec(family="additive", f="z", positions=(1,), seed=0)
    r = Recipe(n=8, L=3, d=2, regime="unit", target=spec, data_seed=7)
    grid = geometric_grid(4, 128)
    ne = n_eps(r, grid, n_test=300)
    assert isinstance(ne, NEps) and ne.reached and ne.ns[-1] == ne.n_eps
    assert all(v > 0.25 for v in ne.mse_ratio[:-1]) and ne.mse_ratio[-1] <= 0.25
    assert ne.n_cross is not None and ne.n_eps / 2 <= ne.n_cross <= ne.n_eps
    curve = n_eps_curve(r, [2, 3], grid, n_test=300)
    assert set(curve) == {2, 3} and all(isinstance(v, NEps) for v in curve.values())


def _curve(fn, Ls):
    return [fn(L) for L in Ls]


LS = (2, 3, 4, 6, 8, 12)


def test_rule_fails_on_exponential_curves():
    for base, c in [(2.0, 4.0), (1.5, 16.0), (2.0, 64.0)]:
        vals = _curve(lambda L: c * base**L, LS)
        ok, fit, why = complexity_rule(LS, vals, 6.0)
        assert ok is False, why
        assert fit.exponential.rss < fit.power.rss and not fit.power_fits_better
    # the SPEC's grid-quantized example: 64, 128, 256, 1024 at L = 2, 3, 4, 6
    ok, fit, _ = complexity_rule((2, 3, 4, 6), (64, 128, 256, 1024), 6.0)
    assert ok is False and fit.exponential.rss < 1e-20
    # exactly 4 points of 2^L: the rule can fail with the fewest points it accepts
    ok, _, _ = complexity_rule((2, 3, 4, 6), (4, 8, 16, 64), 4.0)
    assert ok is False


def test_rule_holds_on_polynomial_curves_and_checks_the_exponent():
    for a, c in [(1.0, 8.0), (2.0, 4.0), (3.0, 1.0)]:
        vals = _curve(lambda L: c * L**a, LS)
        ok, fit, why = complexity_rule(LS, vals, 8.0)
        assert ok is True, why
        assert fit.power.slope == pytest.approx(a, abs=1e-9)
    ok, fit, why = complexity_rule(LS, _curve(lambda L: L**5.0, LS), 4.0)
    assert ok is False and "exponent" in why
    assert doubling_ratios(LS, _curve(lambda L: L**2.0, LS)) == {2: 4.0, 3: 4.0, 4: 4.0, 6: 4.0}


def test_rule_is_inconclusive_with_fewer_than_four_points_and_flat_curves_hold():
    ok, fit, _ = complexity_rule((2, 3, 4, 6), (16, 32, 64, None), 6.0)
    assert ok is None and fit.n == 3
    margin, measured = curve_summary(fit, 6.0)
    assert math.isnan(margin) and measured["finite_points"] == 3
    ok, _, _ = complexity_rule((2, 3, 4, 6), (None,) * 4, 6.0)
    assert ok is None
    # no resolvable growth (within one grid step): a degree-0 polynomial, whatever the noise's shape
    ok, _, why = complexity_rule((2, 3, 4, 6, 8), (128, 64, 64, 128, 128), 4.0)
    assert ok is True and "no growth" in why
    assert FLAT_GROWTH == 2.0
    # growth just beyond one grid step is not "flat": the shape comparison decides (exponential here)
    ok, _, _ = complexity_rule((2, 3, 4, 6), (16, 16, 16, 64), 6.0)
    assert ok is False


def test_fits_match_numpy_polyfit_and_margin_reads_them():
    Ls, ns = (2, 3, 5, 9), (10.0, 30.0, 41.0, 200.0)
    ok, fit, _ = complexity_rule(Ls, ns, 8.0)
    a, b = np.polyfit(np.log(Ls), np.log(ns), 1)
    a2, b2 = np.polyfit(np.array(Ls, float), np.log(ns), 1)
    assert fit.power.slope == pytest.approx(a) and fit.power.intercept == pytest.approx(b)
    assert fit.exponential.slope == pytest.approx(a2) and fit.exponential.intercept == pytest.approx(b2)
    r = np.log(ns) - (a * np.log(Ls) + b)
    assert fit.power.rss == pytest.approx(float(r @ r))
    margin, measured = curve_summary(fit, 8.0)
    shape = min(fit.power.rss / fit.exponential.rss, (200.0 / 10.0) / FLAT_GROWTH)
    assert margin == pytest.approx(max(shape, a / 8.0))
    assert (margin <= 1.0) == ok
    assert measured["exponent"] == pytest.approx(a) and measured["exponent_se"] > 0


def test_n_cross_interpolates_between_grid_points():
    ne = NEps(n_eps=64, ns=(16, 32, 64), mse_ratio=(0.9, 0.5, 0.125), grid=(16, 32, 64, 128), threshold=0.25)
    # log ratio goes 0.5 -> 0.125 (two halvings) between 32 and 64; 0.25 is halfway: sqrt(32 * 64)
    assert ne.n_cross == pytest.approx(math.sqrt(32 * 64))
    assert NEps(None, (16,), (0.9,), (16,), 0.25).n_cross is None
    assert NEps(16, (16,), (0.1,), (16, 32), 0.25).n_cross == 16.0


def test_independent_data_gives_each_seed_pair_its_own_inputs():
    from claims.catalogue._sample_complexity import independent_data

    spec = lambda seed: TargetSpec(family="additive", f="z", positions=(1,), seed=seed)  # noqa: E731
    a = independent_data(Recipe(n=8, L=3, d=2, regime="unit", target=spec(1), data_seed=0))
    b = independent_data(Recipe(n=8, L=3, d=2, regime="unit", target=spec(2), data_seed=0))
    assert a.data_seed != b.data_seed  # same drawn data seed, different targets: different inputs
    assert independent_data(Recipe(n=8, L=3, d=2, regime="unit", target=spec(1), data_seed=0)) == a
    assert a.target == spec(1) and 0 <= a.data_seed < 2**31


def test_censored_growth_keeps_unreached_lengths_as_bounds():
    # n_eps = 4 L^2 on a grid 16..1024: L = 2 is reached at the first grid point ("<= 16"), L = 24 and
    # 32 are not reached ("> 1024"); the rule sees 4 finite points, the censored fit all 6 lengths
    Ls = (2, 4, 8, 12, 24, 32)
    vals = (16.0, 64.0, 256.0, 576.0, None, None)
    g = censored_growth(Ls, vals, 1024, 16)
    assert g.points == 6 and g.censored == 3 and g.law == "power"
    # (the bound "<= 16" sits on the curve at L = 2, which pulls the fit a little: 2.03)
    assert g.exponent == pytest.approx(2.0, abs=0.05) and g.exponent_ci[0] < 2.0 < g.exponent_ci[1]
    ok, fit, _ = complexity_rule(Ls, vals, 6.0)
    margin, measured = curve_summary(fit, 6.0, g)
    assert ok is True and (margin, {k: measured[k] for k in ("exponent", "finite_points")}) == (
        curve_summary(fit, 6.0)[0], {"exponent": fit.power.slope, "finite_points": 4})
    assert measured["censored_exponent"] == g.exponent and measured["censored_points"] == 3
    assert measured["censored_exponent_lo"] < 2.0 < measured["censored_exponent_hi"]
    assert measured["growth_law"] == "power" and measured["evidence_ratio"] > 1
