"""claims.strategies: drawn recipes respect pins and constraints, and shrink toward simple cases."""

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from claims.strategies import recipes, target_specs
from rnn_core.data import DIRECTIONS, REGIMES, Recipe, TargetSpec, make_dataset, separation

FEW = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)


@FEW
@given(recipes(n=6, L=4, regime="unit"))
def test_pinned_fields_are_pinned_and_free_ones_valid(r):
    assert isinstance(r, Recipe)
    assert (r.n, r.L, r.regime) == (6, 4, "unit")
    assert 2 <= r.d <= 6 and r.directions in DIRECTIONS
    assert r.target.family in ("additive", "nvar")  # random labels only on request
    r.target.check_length(4)
    assert 0 <= r.data_seed < 2**31 and 0 <= r.init_seed < 2**31
    assert Recipe.from_json(r.to_json()) == r


@FEW
@given(recipes(n=None, L=None, regime=None, d=st.integers(3, 4), directions="tokens", target="random"))
def test_free_and_strategy_valued_fields(r):
    assert 2 <= r.n <= 16 and 2 <= r.L <= 8 and r.regime in REGIMES
    assert r.d in (3, 4) and r.directions == "tokens" and r.target.family == "random"


@FEW
@given(target_specs(L=5, family="nvar"))
def test_nvar_specs_fit_the_length(spec):
    assert spec.N <= spec.span + 1 and spec.span + spec.lag <= 4 and spec.N >= 2


@FEW
@given(target_specs(L=3, family=("additive",), f="sin"))
def test_additive_specs(spec):
    assert spec.f == "sin" and all(1 <= q <= 3 for q in spec.positions)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(recipes(n=32, L=2, regime=st.sampled_from(["normalized", "unit"]), separation_floor=0.01))
def test_separation_floor_is_feasible_and_honoured(r):
    # small n, L = 2 and a shared X_1 (normalized) or few tokens are the hard cases; the strategy must
    # hand out only recipes whose training set can be built and meets the floor
    X, _ = make_dataset(r)
    assert separation(X) >= 0.01


def test_pinned_target_is_kept_and_checked():
    spec = TargetSpec(family="nvar", N=2, span=2, lag=1, seed=7)
    r = find(recipes(n=4, L=4, regime="unit", target=spec), lambda r: True, settings=settings(database=None))
    assert r.target == spec
    with pytest.raises(ValueError, match="span \\+ lag"):
        find(recipes(n=4, L=3, regime="unit", target=spec), lambda r: True, settings=settings(database=None))


def test_infeasible_pinned_recipe_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot be met"):
        find(recipes(n=20, L=2, d=2, regime="unit", directions="tokens", vocab=2, separation_floor=0.01),
             lambda r: True, settings=settings(database=None))


def test_shrinks_toward_simple_recipes():
    # the minimal example of an always-true predicate is the simplest recipe
    r = find(recipes(n=4, L=3, regime="unit"), lambda r: True, settings=settings(database=None))
    assert (r.d, r.directions, r.data_seed, r.init_seed) == (2, "sphere", 0, 0)
    assert r.target.family == "additive" and r.target.positions == (1,) and r.target.f == "z2"
    # a failure that needs tokens shrinks to tokens, with everything else simple
    r = find(recipes(n=4, L=3, regime="unit"), lambda r: r.directions == "tokens", settings=settings(database=None))
    assert r.directions == "tokens" and r.d == 2 and r.data_seed == 0


@pytest.mark.slow
def test_free_d_is_raised_when_the_floor_needs_it():
    # normalized regime, L = 2, d = 2: the 32 tails lie on a circle of radius eps = 0.05, and a floor of 0.01
    # needs ~0.2 rad between them: at most ~31 fit, so d = 2 is infeasible and the strategy moves to d = 3
    with pytest.raises(ValueError, match="could not be met"):
        from rnn_core.data import make_inputs
        make_inputs(32, 2, 2, regime="normalized", separation_floor=0.01)
    r = find(recipes(n=32, L=2, regime="normalized", directions="sphere", separation_floor=0.01),
             lambda r: True, settings=settings(database=None))
    assert r.d == 3
