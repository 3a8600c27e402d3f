"""rnn_core.targets: structure of the targets, non-additivity, Standardizer."""

import math

import pytest
import torch

from rnn_core.data import make_inputs
from rnn_core.targets import Standardizer, TargetSpec, additive_fit_residual, make_target, nvar_positions


@pytest.mark.parametrize("N,span,lag,L", [(2, 1, 0, 4), (3, 4, 2, 8), (1, 0, 3, 5), (4, 3, 0, 4), (3, 7, 0, 8)])
def test_nvar_span_and_lag(N, span, lag, L):
    tg = make_target(TargetSpec(family="nvar", N=N, span=span, lag=lag), L, 3)
    pos = tg.positions
    assert len(pos) == N == tg.N
    assert list(pos) == sorted(set(pos))  # strictly increasing
    assert pos[-1] == L - lag and pos[-1] - pos[0] == span
    assert tg.span == span and tg.lag == lag
    assert all(1 <= q <= L for q in pos)


def test_nvar_positions_evenly_spread():
    assert nvar_positions(3, 4, 0, 6) == (2, 4, 6)
    assert nvar_positions(3, 3, 1, 8) == (4, 6, 7)  # 1.5 rounds half up to 2
    assert nvar_positions(2, 5, 0, 6) == (1, 6)


def test_additive_structure_and_values():
    spec = TargetSpec(family="additive", f="z3", positions=(3, 1), seed=3)
    tg = make_target(spec, 4, 2)
    assert tg.positions == (1, 3) and tg.span == 2 and tg.lag == 1
    assert torch.allclose(tg.betas.norm(dim=1), torch.ones(2, dtype=torch.float64), atol=1e-15)
    X = make_inputs(5, 4, 2, regime="unnormalized", seed=0)
    manual = (X[:, 0] @ tg.betas[0]) ** 3 + (X[:, 2] @ tg.betas[1]) ** 3
    assert torch.allclose(tg(X), manual, rtol=1e-14, atol=0)


@pytest.mark.parametrize("f,fn", [("z", lambda z: z), ("z2", lambda z: z**2), ("z3", lambda z: z**3),
                                  ("sin", lambda z: torch.sin(math.pi * z)), ("cos", lambda z: torch.cos(math.pi * z))])
def test_nvar_values(f, fn):
    tg = make_target(TargetSpec(family="nvar", f=f, N=2, span=2, lag=1, seed=1), 5, 3)
    assert tg.positions == (2, 4)
    X = make_inputs(6, 5, 3, regime="unit", seed=2)
    z = torch.cat([X[:, 1], X[:, 3]], dim=1) @ tg.betas
    assert float(tg.betas.norm()) == pytest.approx(1.0, abs=1e-15)
    assert torch.allclose(tg(X), fn(z), rtol=1e-13, atol=1e-15)


def test_nvar_z2_is_not_additive_but_additive_targets_are():
    # Best additive fit (per-step polynomials of degree <= 3) on 1500 unit-regime points, d = 4, L = 3:
    # 1 + 3 * 34 = 103 features, far below n. An additive z^2 / z^3 target is fitted to rounding
    # (residual ~1e-29); an N = 2 z^2 target keeps its cross term 2 (b1.X1)(b2.X2), a sizeable share of the
    # variance (~1/3..2/3 depending on how beta splits over the two steps; 0.2 is a loose floor).
    for seed in range(2):
        X = make_inputs(1500, 3, 4, regime="unit", seed=seed)
        nv = make_target(TargetSpec(family="nvar", f="z2", N=2, span=1, lag=0, seed=seed), 3, 4)(X)
        add = make_target(TargetSpec(family="additive", f="z2", positions=(2, 3), seed=seed), 3, 4)(X)
        add3 = make_target(TargetSpec(family="additive", f="z3", positions=(1, 2, 3), seed=seed), 3, 4)(X)
        assert additive_fit_residual(X, nv) > 0.2
        assert additive_fit_residual(X, add) < 1e-10
        assert additive_fit_residual(X, add3) < 1e-10
    # a linear N-variable target IS additive: f(z) = z splits over the steps
    lin = make_target(TargetSpec(family="nvar", f="z", N=2, span=1, seed=0), 3, 4)(X)
    assert additive_fit_residual(X, lin) < 1e-10


def test_additive_fit_residual_needs_enough_samples():
    X = make_inputs(50, 3, 4, regime="unit", seed=0)
    with pytest.raises(ValueError, match="n >= 2"):
        additive_fit_residual(X, X[:, 0, 0])


def test_random_labels():
    tg = make_target(TargetSpec(family="random", seed=4), 3, 2)
    X = make_inputs(4000, 3, 2, regime="unit", seed=0)
    y = tg(X)
    assert torch.equal(y, tg(X))  # reproducible for the same inputs
    # N(0, 1): mean within 5 standard errors (5/sqrt(4000) ~ 0.08), variance within 0.15
    assert abs(float(y.mean())) < 0.08 and abs(float(y.var()) - 1) < 0.15
    # independent of x: no linear dependence on any coordinate beyond sampling noise
    Xf = X.reshape(4000, -1)
    corr = ((Xf - Xf.mean(0)) * (y - y.mean())[:, None]).mean(0) / (Xf.std(0) * y.std())
    assert float(corr.abs().max()) < 0.08
    y2 = tg(make_inputs(4000, 3, 2, regime="unit", seed=1))
    assert float((y - y2).abs().min()) > 0  # fresh inputs get fresh labels
    assert tg.positions == () and tg.span is None and tg.lag is None


@pytest.mark.parametrize("kwargs,match", [
    (dict(family="mixed"), "family"), (dict(f="exp"), "TargetSpec.f"), (dict(positions=()), "at least one"),
    (dict(positions=(0,)), "positions"), (dict(positions=(2, 2)), "distinct"), (dict(N=2), "only to family 'nvar'"),
    (dict(family="nvar", N=3, span=1), "span l_0 >= N - 1"), (dict(family="nvar", N=1, span=2), "span must be 0"),
    (dict(family="nvar", lag=-1), "lag"), (dict(family="nvar", positions=(1,)), "positions does not apply"),
    (dict(family="random", f="z2"), "does not apply to family 'random'"), (dict(seed=-1), "seed"),
])
def test_target_spec_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TargetSpec(**kwargs)


def test_target_length_checks():
    with pytest.raises(ValueError, match="1..L"):
        make_target(TargetSpec(positions=(4,)), 3, 2)
    with pytest.raises(ValueError, match="span \\+ lag"):
        make_target(TargetSpec(family="nvar", N=2, span=2, lag=1), 3, 2)
    tg = make_target(TargetSpec(), 3, 2)
    with pytest.raises(ValueError, match="L = 4"):
        tg(torch.zeros(2, 4, 2, dtype=torch.float64))
    with pytest.raises(ValueError, match="d = 3"):
        tg(torch.zeros(2, 3, 3, dtype=torch.float64))


def test_spec_defaults_and_round_trip():
    assert TargetSpec().positions == (1,) and TargetSpec().f == "z2"
    s = TargetSpec(family="nvar", N=3)
    assert (s.span, s.lag) == (2, 0)
    for spec in (TargetSpec(positions=[2, 1]), s, TargetSpec(family="random", seed=3)):
        assert TargetSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(ValueError, match="unknown keys"):
        TargetSpec.from_dict({"family": "additive", "beta": 1})


def test_standardizer():
    y_train = torch.tensor([1.0, 2.0, 3.0, 6.0], dtype=torch.float64)
    s = Standardizer.fit(y_train)
    z = s(y_train)
    assert float(z.mean()) == pytest.approx(0.0, abs=1e-15)
    assert float(z.std(correction=0)) == pytest.approx(1.0, rel=1e-14)
    # the same affine map on test labels (not refitted)
    y_test = torch.tensor([0.0, 10.0], dtype=torch.float64)
    assert torch.allclose(s(y_test), (y_test - 3.0) / s.std, rtol=1e-15)
    assert torch.allclose(s.inverse(s(y_test)), y_test, rtol=1e-14)
    # constant labels: only centred, no division by a zero std
    c = Standardizer.fit([2.0, 2.0, 2.0])
    assert c.std == 1.0 and torch.equal(c([2.0, 3.0]), torch.tensor([0.0, 1.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        Standardizer.fit([1.0, float("nan")])
    with pytest.raises(ValueError, match="1-D"):
        Standardizer.fit(torch.zeros(2, 2))
