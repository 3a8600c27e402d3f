"""Threshold cells: the per-length search, the growth fit and the verdict rule (claims.threshold_cell),
on a toy claim with a known failure curve and on the ratio claims with a broken recurrent variance."""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import strategies as st

from claims.base import Claim, Outcome
from claims.cell import evaluate_cell
from claims.profiles import get_profile
from claims.threshold_cell import concrete_cell, threshold_cell, threshold_verdict

SMOKE = get_profile("smoke")
CPU = torch.device("cpu")


# ---- the verdict rule ------------------------------------------------------------------------------

def _t(L, status, interval=None):
    return {"L": L, "status": status, "interval": interval}


GROWTH_OK = {"exponent_ci": [0.5, 1.5], "bound": 3.0, "note": ""}


def test_a_length_without_a_working_width_fails_the_cell():
    ths = [_t(2, "found", [50, 80]), _t(8, "above", [4096, None])]
    verdict, reason = threshold_verdict(ths, GROWTH_OK, [2, 8])
    assert verdict == "fails" and "L = 8" in reason
    # an unasserted length is a finding: it does not decide the verdict
    assert threshold_verdict(ths, GROWTH_OK, [2])[0] == "holds"


def test_growth_decides_only_when_every_asserted_length_is_certified():
    found = [_t(2, "found", [50, 80]), _t(4, "found", [90, 150]), _t(8, "below", [None, 16])]
    assert threshold_verdict(found, GROWTH_OK, [2, 4, 8])[0] == "holds"
    too_fast = {"exponent_ci": [3.5, 5.0], "bound": 3.0}
    assert threshold_verdict(found, too_fast, [2, 4, 8])[0] == "fails"
    open_ = {"exponent_ci": [1.0, 4.0], "bound": 3.0}
    assert threshold_verdict(found, open_, [2, 4, 8])[0] == "inconclusive"
    no_fit = {"exponent_ci": None, "bound": 3.0, "note": "too few points"}
    assert threshold_verdict(found, no_fit, [2, 4, 8]) == ("inconclusive",
                                                           "no exponent interval for m*(L): too few points")
    unsure = found[:2] + [_t(8, "non-monotone")]
    assert threshold_verdict(unsure, GROWTH_OK, [2, 4, 8])[0] == "inconclusive"
    all_below = [_t(2, "below"), _t(4, "below")]
    assert threshold_verdict(all_below, {"exponent_ci": None, "bound": 3.0}, [])[0] == "holds"


def test_cell_construction_names_the_bad_parameter():
    with pytest.raises(ValueError, match="m_min, m_max"):
        threshold_cell("unit", [2], 64, 64, 10, 3.0)
    with pytest.raises(ValueError, match="asserted_lengths"):
        threshold_cell("unit", [2, 4], 16, 64, 10, 3.0, asserted_lengths=[8])
    with pytest.raises(ValueError, match="exponent_bound"):
        threshold_cell("unit", [2], 16, 64, 10, math.nan)
    cell = threshold_cell("unit", [4, 2], 16, 64, 10, 3.0, extra={"control": True, "w_var": 4.0})
    assert cell["lengths"] == [2, 4]
    assert concrete_cell(cell, 4, 32) == {"regime": "unit", "control": True, "w_var": 4.0, "m": 32, "L": 4}


# ---- a toy claim with a known failure curve --------------------------------------------------------

#: the toy's threshold: p(m) = sigmoid(logit(0.1) + 3 (log2 M_STAR(L) - log2 m)), M_STAR(L) = 16 L^2
DELTA = 0.1


def _m_star(L: int) -> float:
    return 16.0 * L * L


def _toy_evaluate(cell, recipe, ctx):
    t = math.log2(cell["m"])
    z = math.log(DELTA / (1 - DELTA)) + 3.0 * (math.log2(_m_star(cell["L"])) - t)
    p = 1.0 / (1.0 + math.exp(-z))
    fails = random.Random(recipe["seed"]).random() < p
    return Outcome(ok=not fails, margin=float(fails))


def _toy(cells):
    return Claim(
        id="TOY-THRESHOLD", title="toy threshold", operationalizes="engine test", statement="toy",
        pass_rule="toy", negative_control="toy", expected="toy", axes=("m", "L"), declared={},
        cells=lambda profile: cells,
        strategy=lambda cell, profile: st.fixed_dictionaries({"seed": st.integers(0, 2**31)}),
        evaluate=_toy_evaluate, delta=DELTA,
        must_hold=lambda cell, profile: True,
        cost=lambda cell, profile: float(cell.get("m", 1)) ** 2 / 1e6,
    )


def test_toy_thresholds_are_found_and_the_growth_law_is_the_true_one():
    cell = threshold_cell("unit", [2, 4, 8, 16], 8, 16384, 40, 3.0, asserted_lengths=[2, 4, 8, 16])
    claim = _toy([cell])
    record = evaluate_cell(claim, cell, SMOKE, device=CPU)
    assert record["verdict"] == "holds", record["reason"]
    assert record["kind"] == "threshold"
    assert [t["L"] for t in record["thresholds"]] == [2, 4, 8, 16]
    covered = 0
    for t in record["thresholds"]:
        assert t["status"] == "found"
        lo, hi = t["interval"]
        covered += lo <= _m_star(t["L"]) <= hi
        # the certificate is a sequential test that held at the interval's upper end
        assert t["certificate"]["verdict"] == "holds" and t["certificate"]["m"] >= hi - 1
    assert covered >= 3  # 95% intervals: 4 of 4 expected, one miss allowed (P(>= 2 misses) < 0.02)
    growth = record["growth"]
    lo, hi = growth["exponent_ci"]
    assert lo <= 2.0 <= hi and hi <= 3.0  # m* = 16 L^2
    assert record["examples"] == sum(t["examples"] for t in record["thresholds"])
    assert record["inconclusive_rate"] == 0.0 and record["inconclusive_rate_ci"][0] == 0.0
    assert {"L", "m", "examples", "failures"} <= set(record["series"][0])


def test_toy_threshold_beyond_the_range_is_certified_above():
    cell = threshold_cell("unit", [2, 16], 8, 1024, 24, 3.0, asserted_lengths=[2, 16])  # m*(16) = 4096
    record = evaluate_cell(_toy([cell]), cell, SMOKE, device=CPU)
    assert record["verdict"] == "fails"
    top = record["thresholds"][1]
    assert top["status"] == "above" and top["certificate"] == {**top["certificate"], "m": 1024, "verdict": "fails"}
    assert record["failing_recipe"] is not None and record["failing_cell"]["L"] == 16


# ---- a recurrent variance 20% off fails the ratio claims' smoke searches ---------------------------

def _smoke_cell(claim, regime: str, L: int, w_var: float) -> dict:
    (cell,) = [c for c in claim.cells(SMOKE) if c.get("kind") == "threshold" and c["regime"] == regime]
    assert L in cell["asserted_lengths"] and claim.must_hold(cell, SMOKE)
    # the smoke cell at its longest asserted length only: the shorter lengths run first in the full cell
    # and cannot turn a failing length into a pass
    return {**cell, "lengths": [L], "asserted_lengths": [L], "w_var": w_var}


@pytest.mark.slow
@pytest.mark.parametrize("w_var", [1.6, 2.4])
@pytest.mark.parametrize("claim_id,regime", [("BWD", "unit"), ("BWD", "unnormalized"), ("FWD", "normalized")])
def test_a_recurrent_variance_twenty_percent_off_fails_an_asserted_smoke_cell(claim_id, regime, w_var):
    # BWD: ||delta_1||^2 / m -> (1/2) (w_var / 2)^(L-1): 1.79 > 1 at w_var = 2.4 and 0.10 < 1/4 at 1.6
    # for L = 8, at every width. FWD, normalized inputs: ||h_8||^2 / q_8 -> (w_var / 2)^7: 3.6 or 0.21.
    from claims.registry import resolve_registry

    claim = resolve_registry().get(claim_id)
    record = evaluate_cell(claim, _smoke_cell(claim, regime, 8, w_var), SMOKE, device=CPU)
    assert record["verdict"] == "fails", record["reason"]
    assert record["thresholds"][0]["status"] == "above"


@pytest.mark.slow
def test_the_paper_variance_holds_where_the_faults_fail():
    from claims.registry import resolve_registry

    claim = resolve_registry().get("BWD")
    record = evaluate_cell(claim, _smoke_cell(claim, "unit", 8, 2.0), SMOKE, device=CPU)
    assert record["verdict"] == "holds", record["reason"]
    assert record["thresholds"][0]["status"] in ("found", "below")
