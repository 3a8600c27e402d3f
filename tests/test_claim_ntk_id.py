"""NTK-ID: the structured empirical NTK against the autograd Gram of the gradients."""

import pytest
import torch

import rnn_core
from claims.base import Context
from claims.catalogue import ntk_id
from claims.profiles import get_profile
from rnn_core.data import Recipe
from rnn_core.targets import TargetSpec

CTX = Context(device=torch.device("cpu"), profile=get_profile("smoke"))


def _recipe(L, regime="unit", seed=0):
    return Recipe(n=3, L=L, d=3, regime=regime, target=TargetSpec(family="random", seed=0), data_seed=seed,
                  init_seed=seed)


@pytest.mark.slow
@pytest.mark.parametrize("L", [2, 4])
def test_the_structured_kernel_is_the_gram_of_the_gradients(L):
    out = ntk_id.evaluate({"m": 64, "L": L, "regime": "unnormalized"}, _recipe(L, "unnormalized", 1), CTX)
    assert out.ok is True and out.measured["rel_err"] < 1e-12  # float64 rounding, ~1e-15 measured


def test_the_control_without_cross_time_terms_fails_from_length_three():
    out = ntk_id.evaluate({"m": 64, "L": 4, "regime": "unit", "control": True}, _recipe(4), CTX)
    assert out.ok is False and out.measured["rel_err"] > 1e-3 and "relative error" in out.reason
    # at L = 2 there is a single term: nothing to drop, the control would pass (hence L >= 3)
    assert ntk_id.evaluate({"m": 64, "L": 2, "regime": "unit", "control": True}, _recipe(2), CTX).ok is True


@pytest.mark.parametrize("fault", ["scale", "backward"])
def test_a_wrong_structured_kernel_fails(fault, monkeypatch):
    import rnn_core.model as model

    if fault == "scale":
        real = rnn_core.empirical_ntk
        monkeypatch.setattr(rnn_core, "empirical_ntk", lambda p, X, *a, **k: 2 * real(p, X, *a, **k))
    else:  # the backward pass with W instead of W^T, in the one pass the kernel's features come from
        real_step = model._back_through_W
        monkeypatch.setattr(model, "_back_through_W", lambda delta_next, W, out: real_step(delta_next, W.T, out))
    out = ntk_id.evaluate({"m": 64, "L": 4, "regime": "unit"}, _recipe(4), CTX)
    assert out.ok is False and out.measured["rel_err"] > 1e-3


def test_cells_are_asserted_everywhere_but_the_controls():
    for name in ("smoke", "quick"):
        profile = get_profile(name)
        cells = ntk_id.CLAIM.cells(profile)
        controls = [c for c in cells if c.get("control")]
        assert controls and all(c["L"] >= 3 for c in controls)
        assert all(ntk_id.CLAIM.must_hold(c, profile) is True for c in cells if not c.get("control"))
        assert {c["L"] for c in cells if not c.get("control")} == set(profile.lengths)
