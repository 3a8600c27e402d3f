"""rnn_core.data: regimes, direction families, separation, recipes."""

import json
import math

import pytest
import torch

from rnn_core.data import (
    DIRECTIONS,
    EPS_NORMALIZED,
    Recipe,
    REGIMES,
    TargetSpec,
    first_informative_position,
    make_dataset,
    make_inputs,
    pairwise_separation,
    separation,
    test_seed,
    token_vocabulary,
)

# Norms are set by multiplying unit vectors: exact up to a few ulps.
NORM_TOL = 1e-12


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_normalized_regime_norms(directions):
    X = make_inputs(20, 5, 3, regime="normalized", directions=directions, seed=3)
    assert X.dtype == torch.float64 and X.shape == (20, 5, 3)
    e_d = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert torch.equal(X[:, 0], e_d.expand(20, 3))
    assert torch.allclose(X[:, 1:].norm(dim=2), torch.full((20, 4), EPS_NORMALIZED, dtype=torch.float64),
                          atol=NORM_TOL, rtol=0)


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_unit_regime_norms(directions):
    X = make_inputs(20, 4, 5, regime="unit", directions=directions, seed=1)
    assert torch.allclose(X.norm(dim=2), torch.ones(20, 4, dtype=torch.float64), atol=NORM_TOL, rtol=0)


@pytest.mark.parametrize("directions", DIRECTIONS)
def test_unnormalized_regime_norms_log_uniform(directions):
    X = make_inputs(4000, 2, 3, regime="unnormalized", directions=directions, seed=2)
    r = X.norm(dim=2).flatten()
    assert float(r.min()) >= 0.25 - NORM_TOL and float(r.max()) <= 4.0 + NORM_TOL
    # log-uniform on [log .25, log 4]: the mean of log r is 0 with sd log(16)/sqrt(12) / sqrt(8000) ~ 0.009;
    # 0.05 is > 5 standard errors, so this cannot fail by chance but does catch a uniform-in-r law (mean log ~ 0.5).
    assert abs(float(r.log().mean())) < 0.05
    # both halves of the range are populated (a fixed norm would fail)
    assert float((r < 1).double().mean()) > 0.4 and float((r > 1).double().mean()) > 0.4


def test_tokens_come_from_the_vocabulary():
    X = make_inputs(30, 6, 4, regime="unit", directions="tokens", seed=0, vocab=5)
    E = torch.from_numpy(token_vocabulary(5, 4))
    # every step equals one of the 5 embeddings
    # exact differences (cdist's matmul shortcut loses half the digits at distance 0)
    dist = (X.reshape(-1, 1, 4) - E[None]).norm(dim=2)
    assert float(dist.min(dim=1).values.max()) < 1e-12
    # the vocabulary does not depend on the data seed (train and test share it)
    X2 = make_inputs(30, 6, 4, regime="unit", directions="tokens", seed=99, vocab=5)
    assert float((X2.reshape(-1, 1, 4) - E[None]).norm(dim=2).min(dim=1).values.max()) < 1e-12


def test_gaussian_directions_differ_from_sphere():
    # anisotropic: the first coordinate carries more of the squared norm than the last
    X = make_inputs(2000, 1, 4, regime="unit", directions="gaussian", seed=0)
    share = (X[:, 0] ** 2).mean(dim=0)
    assert float(share[0]) > 2 * float(share[3])
    Xs = make_inputs(2000, 1, 4, regime="unit", directions="sphere", seed=0)
    share_s = (Xs[:, 0] ** 2).mean(dim=0)
    assert float(share_s.max() / share_s.min()) < 1.3  # isotropic: 0.25 each up to sampling noise


def test_seeds_are_reproducible_and_distinct():
    a = make_inputs(5, 3, 2, regime="unit", seed=7)
    b = make_inputs(5, 3, 2, regime="unit", seed=7)
    c = make_inputs(5, 3, 2, regime="unit", seed=8)
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_separation_parallel_and_orthogonal():
    x = make_inputs(1, 3, 2, regime="unnormalized", seed=0)[0]
    X = torch.stack([x, 2.5 * x])
    assert separation(X) < 1e-14  # exact recomputation of the minimizing pair: rounding only
    X = torch.stack([x, -0.5 * x])  # anti-parallel: x_hat + x_hat' = 0
    assert separation(X) < 1e-14
    O = torch.zeros(2, 2, 2, dtype=torch.float64)
    O[0, 0, 0] = 1.0
    O[1, 1, 1] = 3.0
    assert separation(O) == pytest.approx(math.sqrt(2), abs=1e-15)
    assert separation(O[:1]) == math.inf


def test_separation_matches_bruteforce():
    X = make_inputs(40, 3, 2, regime="unnormalized", directions="gaussian", seed=5)
    F = X.reshape(40, -1)
    U = F / F.norm(dim=1, keepdim=True)
    best = math.inf
    for i in range(40):
        for j in range(i + 1, 40):
            best = min(best, float((U[i] - U[j]).norm()), float((U[i] + U[j]).norm()))
    assert separation(X) == pytest.approx(best, rel=1e-12, abs=1e-15)
    D = pairwise_separation(X)
    off = D + torch.eye(40, dtype=torch.float64) * 10
    # Gram-based pairwise values lose ~half the digits only near parallel pairs; here best >> 1e-4
    assert float(off.min()) == pytest.approx(best, rel=1e-8)
    assert torch.allclose(D, D.T)


@pytest.mark.parametrize("regime,directions,floor", [
    ("unit", "sphere", 0.3), ("unnormalized", "gaussian", 0.4), ("normalized", "sphere", 0.01),
    ("unit", "tokens", 0.05),
])
def test_separation_floor_honoured(regime, directions, floor):
    X = make_inputs(64, 2, 3, regime=regime, directions=directions, seed=0, separation_floor=floor, vocab=16)
    assert separation(X) >= floor
    # without the floor the same law produces closer pairs, so the floor did real work
    X0 = make_inputs(64, 2, 3, regime=regime, directions=directions, seed=0, vocab=16)
    assert separation(X0) < floor


def test_impossible_floor_is_a_clear_error():
    # vocab 2, L = 2, unit regime: only 4 distinct sequences, so 10 separated ones cannot exist
    with pytest.raises(ValueError, match="separation_floor"):
        make_inputs(10, 2, 3, regime="unit", directions="tokens", vocab=2, separation_floor=0.01)


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "n must be"), (dict(L=0), "L must be"), (dict(d=0), "d must be"),
    (dict(regime="tiny"), "regime"), (dict(directions="cube"), "directions"),
    (dict(separation_floor=1.5), "separation_floor"), (dict(separation_floor=-0.1), "separation_floor"),
    (dict(seed=-1), "seed"), (dict(vocab=0), "vocab"), (dict(n=2.5), "n must be"),
])
def test_make_inputs_bad_input(kwargs, match):
    args = dict(n=4, L=3, d=2, regime="unit")
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_inputs(args.pop("n"), args.pop("L"), args.pop("d"), **args)


def test_separation_bad_input():
    with pytest.raises(ValueError, match="X"):
        separation(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="NaN"):
        separation(torch.full((2, 2, 2), float("nan")))


def test_recipe_json_round_trip():
    for spec in (TargetSpec(family="additive", f="sin", positions=(3, 1), seed=4),
                 TargetSpec(family="nvar", f="z3", N=3, span=3, lag=1, seed=2),
                 TargetSpec(family="random", seed=9)):
        r = Recipe(n=8, L=5, d=3, regime="normalized", directions="tokens", target=spec,
                   separation_floor=0.01, data_seed=11, init_seed=12, vocab=6)
        s = r.to_json()
        json.loads(s)  # plain JSON
        assert Recipe.from_json(s) == r
        assert Recipe.from_dict(json.loads(s)) == r
    assert r.target.positions is None and Recipe.from_json(s).target.family == "random"


@pytest.mark.parametrize("kwargs,match", [
    (dict(n=0), "Recipe.n"), (dict(L=0), "Recipe.L"), (dict(d=0), "Recipe.d"),
    (dict(regime="x"), "Recipe.regime"), (dict(directions="x"), "Recipe.directions"),
    (dict(target=TargetSpec(positions=(5,))), "positions must lie in 1..L"),
    (dict(target=TargetSpec(family="nvar", N=2, span=3, lag=1)), "span \\+ lag"),
    (dict(separation_floor=2.0), "separation_floor"), (dict(data_seed=-3), "data_seed"),
    (dict(vocab=0), "vocab"), (dict(target="additive"), "Recipe.target"),
])
def test_recipe_validation(kwargs, match):
    args = dict(n=4, L=4, d=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        Recipe(**args)


def test_recipe_from_dict_rejects_unknown_keys():
    d = Recipe(n=2, L=2, d=2).to_dict()
    d["widht"] = 3
    with pytest.raises(ValueError, match="unknown keys"):
        Recipe.from_dict(d)
    with pytest.raises(ValueError, match="JSON"):
        Recipe.from_json("{not json")


def test_make_dataset_train_test():
    r = Recipe(n=16, L=3, d=3, regime="unit", target=TargetSpec(f="z2", positions=(1, 3), seed=5),
               separation_floor=0.05, data_seed=2)
    X, y = make_dataset(r)
    assert X.shape == (16, 3, 3) and y.shape == (16,)
    assert separation(X) >= 0.05
    Xt, yt = make_dataset(r, split="test", n=50)
    assert Xt.shape == (50, 3, 3)
    # independent seed: no test sequence repeats a training one
    assert float(torch.cdist(Xt.reshape(50, -1), X.reshape(16, -1)).min()) > 1e-6
    assert test_seed(2) != 2 and test_seed(2) != test_seed(3)
    # same target function on both splits
    from rnn_core.targets import make_target
    tg = make_target(r.target, 3, 3)
    assert torch.allclose(tg(Xt), yt, atol=0, rtol=0)
    assert torch.allclose(tg(X), y, atol=0, rtol=0)
    with pytest.raises(ValueError, match="split"):
        make_dataset(r, split="val")


@pytest.mark.parametrize("regime", REGIMES)
def test_first_informative_position_is_the_first_step_that_varies(regime):
    X = make_inputs(32, 4, 3, regime=regime, seed=5)
    varies = [bool((X[:, l] - X[0, l]).abs().max() > 0) for l in range(4)]
    assert varies.index(True) + 1 == first_informative_position(regime)


def test_first_informative_position_names_the_regime_on_bad_input():
    with pytest.raises(ValueError, match="regime must be one of"):
        first_informative_position("normalised")
