"""The sequential verdict rule (claims/verdict.py): Wald's SPRT with an indifference region, its
operating characteristic measured by simulation, and the Clopper-Pearson bounds kept in records."""

import math

import pytest

from claims.verdict import (
    INCONCLUSIVE_SHARE,
    RULE,
    SequentialTest,
    TestPlan,
    clopper_pearson,
    default_delta_1,
    operating_characteristic,
    sequential_verdict,
)


def test_default_alternative_is_the_specs():
    assert default_delta_1(0.1) == pytest.approx(0.3)
    assert default_delta_1(0.05) == pytest.approx(0.25)
    assert default_delta_1(0.3) == pytest.approx(0.9)
    assert TestPlan.of(0.1).delta_1 == pytest.approx(0.3)


def test_decision_boundaries_for_delta_01():
    plan = TestPlan.of(0.1, budget=40)
    assert plan.min_examples_to_hold() == 12
    assert plan.min_examples_to_fail() == 3
    d = sequential_verdict([True] * 11, plan)
    assert d.verdict is None  # 11 passes are not enough
    d = sequential_verdict([True] * 12, plan)
    assert d.verdict == "holds" and d.examples == 12 and d.failures == 0
    d = sequential_verdict([False] * 3 + [True] * 10, plan)
    assert d.verdict == "fails" and d.examples == 3  # stops at the decision; later outcomes unread
    # one failure costs ceil(log(3)/log(9/7)) = 5 more passes: 17 passes and 1 failure
    d = sequential_verdict([False] + [True] * 16, plan)
    assert d.verdict is None
    d = sequential_verdict([False] + [True] * 17, plan)
    assert d.verdict == "holds" and d.examples == 18


def test_inconclusive_examples_do_not_move_the_test_but_count_against_the_budget():
    plan = TestPlan.of(0.1, budget=15)
    d = sequential_verdict([None] * 3 + [True] * 12, plan)
    assert d.verdict == "holds" and d.inconclusive == 3 and d.examples == 15
    # a budget at or below n_0 = 12 stops an all-inconclusive cell for the budget
    d = sequential_verdict([None] * 10, TestPlan.of(0.1, budget=10))
    assert d.verdict == "inconclusive" and "budget" in d.reason and "every example was inconclusive" in d.reason


def test_futility_stops_a_cell_whose_first_n0_examples_are_all_inconclusive():
    plan = TestPlan.of(0.1, budget=60)
    assert plan.futility == plan.min_examples_to_hold() == 12 and plan.to_dict()["futility"] == 12
    d = sequential_verdict([None] * 60, plan)
    assert d.verdict == "inconclusive" and d.examples == 12 and d.reason.startswith("futility")
    # one inconclusive example fewer: the cell goes on and can still hold, once at most a third of its
    # examples were inconclusive (11 of 33)
    d = sequential_verdict([None] * 11 + [True] * 12, plan)
    assert d.verdict is None and d.examples == 23
    d = sequential_verdict([None] * 11 + [True] * 22, plan)
    assert d.verdict == "holds" and d.examples == 33
    # after one conclusive example the stop never applies: only the budget ends the cell
    d = sequential_verdict([True] + [None] * 80, plan)
    assert d.verdict == "inconclusive" and d.examples == 60 and d.reason.startswith("budget")
    d = sequential_verdict([None] * 5 + [False] + [None] * 80, plan)
    assert d.examples == 60 and d.reason.startswith("budget")


def _without_futility(stream, plan):
    """The rule with the budget as its only truncation (the test before the futility stop)."""
    llr, failures, k = 0.0, 0, 0
    for n, ok in enumerate(stream, 1):
        if ok is not None:
            k += 1
            failures += not ok
            llr += plan.step_pass if ok else plan.step_fail
            if llr >= plan.upper:
                return "fails", n
            if llr <= plan.lower and clopper_pearson(failures, k, plan.alpha)[1] <= plan.delta_1:
                return "holds", n
        if n >= plan.budget:
            return "inconclusive", n
    return None, len(stream)


def test_futility_never_decides_holds_or_fails():
    # The stop only ends cells as inconclusive: on random streams of passing, failing and
    # inconclusive examples, the verdict is the one of the rule without the stop, or 'inconclusive'
    # where the stream starts with n_0 inconclusive examples (and then only there).
    import random

    rng = random.Random(3)
    plan = TestPlan.of(0.1, budget=60, inconclusive_share=None)  # the share rule is tested below
    stopped = 0
    for _ in range(3000):
        p_inc, p_fail = rng.choice([0.0, 0.5, 0.8, 0.9, 0.97]), rng.choice([0.0, 0.1, 0.3, 0.6])
        stream = [None if rng.random() < p_inc else not (rng.random() < p_fail) for _ in range(60)]
        d = sequential_verdict(stream, plan)
        ref, _ = _without_futility(stream, plan)
        if all(ok is None for ok in stream[: plan.futility]):
            stopped += 1
            assert d.verdict == "inconclusive" and d.reason.startswith("futility")
        else:
            assert d.verdict == ref
    assert stopped > 100  # the draw above does exercise the stop


def test_budget_ends_undecided_cells_as_inconclusive():
    plan = TestPlan.of(0.1, budget=20)
    outcomes = [False, True, True, False] + [True] * 30  # two failures need 23 passes
    d = sequential_verdict(outcomes, plan)
    assert d.verdict == "inconclusive" and d.examples == 20 and d.reason.startswith("budget")


def test_delta_zero_fails_at_the_first_failure():
    plan = TestPlan.of(0.0, budget=30)
    assert plan.delta_1 == pytest.approx(0.2)
    assert sequential_verdict([True, False], plan).verdict == "fails"
    assert sequential_verdict([True] * 14, plan).verdict == "holds"


def test_every_holds_has_a_clopper_pearson_bound_within_delta_1():
    # walk every path of the test for a few plans: whenever it accepts H0, the one-sided (1 - alpha)
    # upper bound on p is at most delta_1
    for delta in (0.0, 0.02, 0.05, 0.1, 0.2):
        plan = TestPlan.of(delta, budget=60)
        for failures_at in range(0, 5):
            outcomes = [True] * 60
            for j in range(failures_at):
                outcomes[3 * j + 1] = False
            d = sequential_verdict(outcomes, plan)
            if d.verdict == "holds":
                k = d.examples - d.inconclusive
                assert clopper_pearson(d.failures, k, plan.alpha)[1] <= plan.delta_1 + 1e-12


def test_adding_after_a_decision_is_an_error():
    test = SequentialTest(TestPlan.of(0.1))
    for _ in range(3):
        test.add(False)
    with pytest.raises(RuntimeError):
        test.add(True)
    with pytest.raises(ValueError, match="ok must be"):
        SequentialTest(TestPlan.of(0.1)).add(1)


@pytest.mark.parametrize("kwargs, name", [
    ({"delta": 1.2, "delta_1": 0.5}, "delta"),
    ({"delta": 0.3, "delta_1": 0.2}, "delta_1"),
    ({"delta": 0.1, "delta_1": 0.3, "alpha": 0.0}, "alpha"),
    ({"delta": 0.1, "delta_1": 0.3, "beta": 0.7}, "beta"),
    ({"delta": 0.1, "delta_1": 0.3, "budget": 0}, "budget"),
])
def test_plan_validation_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TestPlan(**kwargs)


def test_clopper_pearson_known_values():
    # 0 failures in 12: hi = 1 - 0.05^(1/12) (the exact one-sided bound when F = 0)
    lo, hi = clopper_pearson(0, 12)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.05 ** (1 / 12), rel=1e-9)
    lo, hi = clopper_pearson(3, 3)
    assert hi == 1.0 and lo == pytest.approx(0.05 ** (1 / 3), rel=1e-9)
    assert clopper_pearson(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="failures"):
        clopper_pearson(4, 3)


# Operating characteristic. 4000 simulated cells per p: the Monte Carlo standard error of a rate near
# 0.05 is sqrt(0.05 * 0.95 / 4000) = 0.0034, so "within alpha" is asserted as rate <= alpha + 3 SE
# (a true rate of alpha would exceed that bound with probability 0.13%).
RUNS = 4000


@pytest.mark.slow
@pytest.mark.parametrize("delta", [0.1, 0.05])
def test_operating_characteristic_error_rates(delta):
    plan = TestPlan.of(delta, budget=40)
    se = math.sqrt(0.05 * 0.95 / RUNS)
    table = {}
    for p in (0.0, delta, (delta + plan.delta_1) / 2, plan.delta_1, 0.6):
        table[p] = operating_characteristic(plan, p, RUNS, seed=1)
    # wrong verdicts: fails when p <= delta, holds when p >= delta_1
    for p in (0.0, delta):
        assert table[p]["fails"] <= plan.alpha + 3 * se, (p, table[p])
    for p in (plan.delta_1, 0.6):
        assert table[p]["holds"] <= plan.beta + 3 * se, (p, table[p])
    # and the test is informative: it decides correctly most of the time at the extremes
    assert table[0.0]["holds"] == 1.0 and table[0.0]["mean_examples"] == plan.min_examples_to_hold()
    assert table[0.6]["fails"] >= 0.99
    assert table[delta]["holds"] >= 0.6  # at the boundary of H0 it still holds most of the time


def test_rule_prose_states_the_test():
    for needle in ("sequential probability ratio test", "delta_1 = max(3 delta, delta + 0.2)", "alpha",
                   "beta", "budget", "futility", "Clopper-Pearson", "inconclusive", "skipped", "error",
                   "at most a third", "mostly inconclusive", "certifies", "two-sided 95% Clopper-Pearson"):
        assert needle in RULE


# The conclusive share: H0 is accepted only while at most a third of the examples were inconclusive.


def test_mostly_inconclusive_cells_do_not_hold_and_keep_sampling():
    plan = TestPlan.of(0.1, budget=20)
    assert plan.inconclusive_share == INCONCLUSIVE_SHARE == pytest.approx(1 / 3)
    assert plan.to_dict()["inconclusive_share"] == pytest.approx(1 / 3)
    # LAZY in quick: 8 of 20 inconclusive, 12 passing: H0's boundary, but 8 > 20 / 3
    d = sequential_verdict([None] * 8 + [True] * 12, plan)
    assert d.verdict == "inconclusive" and d.examples == 20 and d.reason.startswith("mostly inconclusive")
    # 6 of 18 is exactly a third: holds
    d = sequential_verdict([None] * 6 + [True] * 12, plan)
    assert d.verdict == "holds" and d.examples == 18 and "6 of 18 inconclusive" in d.reason
    # with a larger budget the cell keeps sampling until the share falls to a third: 8 of 24
    d = sequential_verdict([None] * 8 + [True] * 30, TestPlan.of(0.1, budget=40))
    assert d.verdict == "holds" and d.examples == 24
    # inconclusive examples drawn while waiting count too: 10 of 30
    d = sequential_verdict([None] * 8 + [True] * 12 + [None, True, None] + [True] * 30, TestPlan.of(0.1, budget=40))
    assert d.verdict == "holds" and d.examples == 30 and d.inconclusive == 10
    # it stops as soon as the share cannot fall to a third within the budget (11 > 30 / 3)
    d = sequential_verdict([None] * 11 + [True] * 40, TestPlan.of(0.1, budget=30))
    assert d.verdict == "inconclusive" and d.examples == 23 and "cannot fall" in d.reason
    # a claim whose inconclusive examples do not go with failing: no bound
    d = sequential_verdict([None] * 8 + [True] * 12, TestPlan.of(0.1, budget=20, inconclusive_share=None))
    assert d.verdict == "holds" and d.examples == 20


def test_a_cell_waiting_for_its_share_cannot_fail():
    # H0's boundary at example 22 with 10 of 22 inconclusive; then failures that would accept H1
    stream = [None] * 10 + [True] * 12 + [False] * 10 + [True] * 40
    d = sequential_verdict(stream, TestPlan.of(0.1, budget=60))
    assert d.verdict == "inconclusive" and d.reason.startswith("mostly inconclusive") and d.examples == 60
    # failures that bring the ratio back above H0's boundary delay 'holds' until it is reached again
    stream = [None] * 10 + [True] * 12 + [False] + [True] * 40
    d = sequential_verdict(stream, TestPlan.of(0.1, budget=60))
    assert d.verdict == "holds" and d.examples == 30 and d.failures == 1


@pytest.mark.parametrize("kwargs", [{"inconclusive_share": 0.0}, {"inconclusive_share": 1.5},
                                    {"inconclusive_share": True}])
def test_share_validation_names_the_parameter(kwargs):
    with pytest.raises(ValueError, match="inconclusive_share"):
        TestPlan.of(0.1, **kwargs)


def _stream(rng, p_fail, p_inc, p_bad=0.0, bad_inc=0.0):
    """One example: with probability p_bad it is 'bad' (fails the claim's intent) and then inconclusive
    with probability bad_inc, else failing; otherwise inconclusive with probability p_inc, else failing
    with probability p_fail."""
    if p_bad and rng.random() < p_bad:
        return None if rng.random() < bad_inc else False
    if p_inc and rng.random() < p_inc:
        return None
    return not (rng.random() < p_fail)


def test_share_rule_only_moves_holds_to_inconclusive():
    # the same random streams under the rule and without it (inconclusive_share None): every verdict is
    # the same except that some 'holds' become 'inconclusive'; never a 'fails' more or less
    import random

    rng = random.Random(5)
    with_rule, without = TestPlan.of(0.1, budget=40), TestPlan.of(0.1, budget=40, inconclusive_share=None)
    moved = 0
    for _ in range(2000):
        p_inc, p_fail = rng.choice([0.0, 0.2, 0.3, 0.4, 0.5, 0.7]), rng.choice([0.0, 0.05, 0.1, 0.2, 0.3])
        stream = [_stream(rng, p_fail, p_inc) for _ in range(40)]
        a, b = sequential_verdict(stream, with_rule), sequential_verdict(stream, without)
        if b.verdict == "holds" and a.verdict != "holds":
            assert a.verdict == "inconclusive" and a.reason.startswith("mostly inconclusive")
            moved += 1
        else:
            assert a.verdict == b.verdict, (stream, a, b)
    assert moved > 100  # the draw above does exercise the rule


# Operating characteristic with inconclusive examples: the same 2000 random streams per row under the
# rule and without it (inconclusive_share None); Monte Carlo SE of a rate near 0.05: 0.0049.
# q: the inconclusive rate; p: the failure rate of a conclusive example.
OC_RUNS = 2000


@pytest.mark.slow
def test_share_rule_operating_characteristic():
    import random

    plan, free = TestPlan.of(0.1, budget=40), TestPlan.of(0.1, budget=40, inconclusive_share=None)
    se = math.sqrt(0.05 * 0.95 / OC_RUNS)
    rng = random.Random(7)
    table = {}
    for q in (0.2, 0.4):
        for p in (0.0, 0.1, 0.3):
            counts = {"rule": {"holds": 0, "fails": 0, "inconclusive": 0}, "free": {"holds": 0, "fails": 0,
                                                                                   "inconclusive": 0}}
            for _ in range(OC_RUNS):
                stream = [_stream(rng, p, q) for _ in range(plan.budget)]
                counts["rule"][sequential_verdict(stream, plan).verdict] += 1
                counts["free"][sequential_verdict(stream, free).verdict] += 1
            table[(q, p)] = {k: {v: c / OC_RUNS for v, c in d.items()} for k, d in counts.items()}
    for (q, p), row in table.items():
        new, old = row["rule"], row["free"]
        assert new["fails"] == old["fails"]  # same streams: alpha and the power are untouched
        assert new["holds"] <= old["holds"] and new["inconclusive"] >= old["inconclusive"]
        if p == 0.3:  # beta: P(holds | p = delta_1) stays within beta
            assert new["holds"] <= plan.beta + 3 * se
    # q = 0.2: the share exceeds a third only by chance, and the cell keeps sampling: holds stays high
    assert table[(0.2, 0.0)]["rule"]["holds"] >= 0.95
    # q = 0.4: about half the cells that held without the rule no longer hold (measured 0.52 vs 1.0)
    assert table[(0.4, 0.0)]["rule"]["holds"] < 0.7 * table[(0.4, 0.0)]["free"]["holds"], table

    # inconclusive examples that go with failing: 40% of the examples are 'bad' (the claim fails on them,
    # p = 0.4 > delta_1) but 90% of the bad ones show up as inconclusive (and 10% of the good ones), so
    # the conclusive failure rate is 0.07 and the inconclusive share 0.42: without the rule the test
    # accepts H0 for most streams, with it for few
    holds = {"rule": 0, "free": 0}
    for _ in range(OC_RUNS):
        stream = [_stream(rng, 0.0, 0.1, p_bad=0.4, bad_inc=0.9) for _ in range(plan.budget)]
        holds["rule"] += sequential_verdict(stream, plan).verdict == "holds"
        holds["free"] += sequential_verdict(stream, free).verdict == "holds"
    assert holds["free"] / OC_RUNS > 0.3 and holds["rule"] < holds["free"] / 2, holds


def test_cell_records_report_the_inconclusive_rate_and_apply_the_share():
    # a toy claim whose examples are inconclusive on their own for odd x (about half of them)
    import dataclasses

    from claims.base import Outcome
    from claims.cell import inconclusive_rate
    from claims.profiles import get_profile
    from claims.runner import run_cell
    from scipy.stats import beta as beta_dist
    from tests.toy_claims import TOY

    smoke = get_profile("smoke")
    lo, hi = inconclusive_rate(8, 20)["inconclusive_rate_ci"]
    assert lo == pytest.approx(beta_dist.ppf(0.025, 8, 13)) and hi == pytest.approx(beta_dist.ppf(0.975, 9, 12))
    assert inconclusive_rate(0, 0) == {"inconclusive_rate": None, "inconclusive_rate_ci": [0.0, 1.0]}

    def evaluate(cell, recipe, ctx):
        return Outcome(ok=None if recipe["x"] % 2 else True, margin=0.5)

    cell = {"m": smoke.widths[-1], "L": 2}
    base = dataclasses.replace(TOY.get("TOY-HOLDS"), evaluate=evaluate, max_examples=60)
    rec = run_cell(base, cell, smoke, device="cpu")
    n, k = rec["examples"], rec["inconclusive"]
    assert rec["inconclusive_rate"] == pytest.approx(k / n)
    assert rec["inconclusive_rate_ci"] == pytest.approx(list(clopper_pearson(k, n, 0.025)))
    assert rec["test"]["inconclusive_share"] == pytest.approx(1 / 3)
    assert rec["verdict"] == "inconclusive" and rec["reason"].startswith("mostly inconclusive"), rec["reason"]
    assert 3 * k > n
    # the same draw under a claim that documents its inconclusive examples as unrelated to failing
    free = dataclasses.replace(base, inconclusive_unrelated="docs/SPEC_NOTES.md: toy")
    assert free.plan(smoke).inconclusive_share is None
    rec_free = run_cell(free, cell, smoke, device="cpu")
    assert rec_free["verdict"] == "holds" and rec_free["test"]["inconclusive_share"] is None
    assert 3 * rec_free["inconclusive"] > rec_free["examples"]  # this draw is mostly inconclusive
    with pytest.raises(ValueError, match="inconclusive_unrelated"):
        dataclasses.replace(base, inconclusive_unrelated=True)
