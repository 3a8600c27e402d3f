"""The cost model and the order of submission (claims.scheduling, claims.executors.DaskExecutor).

- cell_cost: a control costs ``min_examples_to_fail`` examples, any other cell ``min_examples_to_hold``
  (capped by the example budget), times the claim's per-example estimate; a threshold or search cell
  costs the claim's estimate once; a broken estimate counts 1 s;
- calibrate: per claim, measured / estimated seconds over usable records (skipped, error, unknown cells
  and non-numeric durations left out);
- order_by_cost: most expensive first, ties by rank, independent of the input order;
- the Dask executor submits most expensive first with ``priority`` increasing in cost (checked on a
  stand-in client, so no cluster is started; tests/test_dask.py checks it on a real one), and asks
  for a GPU resource for CUDA cells only.
"""

from __future__ import annotations

import dataclasses
import io
import math
import random

import pytest

from claims.executors import DaskExecutor, Task
from claims.profiles import get_profile
from claims.scheduling import calibrate, cell_cost, order_by_cost
from claims.session import estimated_costs
from tests.toy_claims import TOY
from tests.toy_claims_extra import COSTLY

SMOKE = get_profile("smoke")


# --------------------------------------------------------------------------------------------------
# cell_cost


def test_control_costs_examples_to_fail_and_others_examples_to_hold():
    claim = COSTLY.get("TOY-COST")
    plan = claim.plan(SMOKE)
    # the numbers the docs state for delta = 0.1, alpha = beta = 0.05
    assert (plan.min_examples_to_hold(), plan.min_examples_to_fail()) == (12, 3)
    plain = {"m": 256, "L": 2}
    control = {"m": 64, "L": 2, "control": True}
    assert cell_cost(claim, plain, SMOKE) == pytest.approx(0.256 * 12)
    assert cell_cost(claim, control, SMOKE) == pytest.approx(0.5 * 3)
    assert cell_cost(claim, plain, SMOKE, factor=2.5) == pytest.approx(0.256 * 12 * 2.5)
    # the default estimate is one second per example
    holds = TOY.get("TOY-HOLDS")
    assert cell_cost(holds, {"m": 64, "L": 2}, SMOKE) == 12.0
    assert cell_cost(holds, {"m": 64, "L": 2, "control": True}, SMOKE) == 3.0
    # a threshold or search cell is one search: the claim's estimate is all of it
    assert cell_cost(claim, {"m": 256, "L": 2, "kind": "search"}, SMOKE) == pytest.approx(0.256)
    assert cell_cost(claim, {"m": 256, "L": 2, "kind": "search"}, SMOKE, factor=2.0) == pytest.approx(0.512)


def test_cell_cost_is_capped_by_the_budget_and_survives_broken_estimates():
    claim = COSTLY.get("TOY-COST")
    tiny = dataclasses.replace(claim, max_examples=5)
    assert cell_cost(tiny, {"m": 1000, "L": 2}, SMOKE) == pytest.approx(1.0 * 5)  # min(12, 5)
    for bad in (math.nan, math.inf, -3.0):
        broken = dataclasses.replace(claim, cost=lambda cell, p, v=bad: v)
        value = cell_cost(broken, {"m": 64, "L": 2}, SMOKE)
        assert value == 12.0 and math.isfinite(value)


# --------------------------------------------------------------------------------------------------
# calibrate


def _rec(claim, key, seconds, verdict="holds"):
    return {"claim": claim, "cell_key": key, "duration_s": seconds, "verdict": verdict}


def test_calibrate_is_measured_over_estimated_per_claim():
    estimates = {("A", "k1"): 2.0, ("A", "k2"): 6.0, ("B", "k1"): 4.0, ("C", "k1"): 1.0}
    records = [
        _rec("A", "k1", 1.0), _rec("A", "k2", 3.0),        # A: 4 s measured / 8 s estimated
        _rec("B", "k1", 12.0),                              # B: 12 / 4
        _rec("B", "k9", 100.0),                             # no estimate: left out
        _rec("C", "k1", 50.0, verdict="skipped"),           # skipped: left out
        _rec("C", "k1", 50.0, verdict="error"),             # error: left out
        _rec("A", "k1", None), _rec("A", "k1", math.nan),  # no usable duration
    ]
    factors = calibrate(records, estimates)
    assert factors == {"A": pytest.approx(0.5), "B": pytest.approx(3.0)}
    assert calibrate([], estimates) == {}
    assert calibrate([_rec("A", "k1", 0.0)], estimates) == {}  # a zero measurement calibrates nothing


def test_estimated_costs_per_claim_and_list_cost(monkeypatch):
    claim = COSTLY.get("TOY-COST")
    costs = estimated_costs([claim], SMOKE)
    expected = sum(cell_cost(claim, cell, SMOKE) for cell in claim.cells(SMOKE))
    assert costs == {"TOY-COST": pytest.approx(expected)}
    from claims.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["list", "--profile", "smoke", "--cost", "--registry", COSTLY.spec], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    text = out.getvalue()
    assert "TOY-COST" in text and f"~{expected:.0f} s on one core" in text and "total under smoke" in text


# --------------------------------------------------------------------------------------------------
# order_by_cost


def test_order_by_cost_is_most_expensive_first_deterministic_with_rank_ties():
    items = [("a", 1.0), ("b", 5.0), ("c", 5.0), ("d", 0.5), ("e", 3.0), ("f", 5.0)]
    rank = {name: i for i, (name, _) in enumerate(items)}
    expected = ["b", "c", "f", "e", "a", "d"]
    rng = random.Random(4)
    for _ in range(20):
        shuffled = items[:]
        rng.shuffle(shuffled)
        order = order_by_cost(shuffled, lambda it: it[1], lambda it: rank[it[0]])
        assert [name for name, _ in order] == expected
    costs = [c for _, c in order_by_cost(items, lambda it: it[1], lambda it: rank[it[0]])]
    assert costs == sorted(costs, reverse=True)


# --------------------------------------------------------------------------------------------------
# the Dask executor's submission


class _FakeFuture:
    def __init__(self, result):
        self._result = result

    def result(self):
        return self._result


class _FakeClient:
    def __init__(self):
        self.calls = []

    def submit(self, fn, task, expected, *, key, pure, priority, resources, workers, allow_other_workers):
        self.calls.append({"task": task, "key": key, "priority": priority, "resources": resources, "pure": pure,
                           "workers": workers})
        return _FakeFuture({"claim": task.claim_id, "cell_key": task.key})

    def scheduler_info(self):  # two workers without a memory limit: every cell may go anywhere
        return {"workers": {"tcp://127.0.0.1:1": {"memory_limit": 0}, "tcp://127.0.0.1:2": {"memory_limit": 0}}}

    def cancel(self, futures, force=False):
        pass

    def close(self, timeout=None):
        pass


def _tasks(costs, device="cpu"):
    return [Task(registry="tests.toy_claims:TOY", claim_id="TOY-HOLDS", cell={"m": i, "L": 2}, profile=SMOKE,
                 device=device, cost=c, key=f"TOY-HOLDS/m={i}") for i, c in enumerate(costs)]


def _fake_executor(monkeypatch):
    import distributed

    monkeypatch.setattr(distributed, "as_completed", lambda futures: iter(list(futures)))
    ex = DaskExecutor.__new__(DaskExecutor)  # no cluster: the client is a stand-in
    ex.client, ex.cluster, ex.address, ex.workers, ex.threads, ex._futures = _FakeClient(), None, "fake", 2, 1, []
    ex.remote, ex._expected, ex._limits = None, None, {}  # a local cluster: no worker check, no TLS
    return ex


def test_dask_submits_most_expensive_first_with_priority_increasing_in_cost(monkeypatch):
    from claims.session import order_by_cost as session_order

    costs = [0.5, 120.0, 3.0, 3.0, 45.0, 0.002, 7.25]
    tasks = session_order(_tasks(costs), lambda t: t.cost, lambda t: t.key)  # what the session hands over
    ex = _fake_executor(monkeypatch)
    results = list(ex.results(tasks))
    calls = ex.client.calls
    assert [c["task"] for c in calls] == tasks  # submitted in the session's order: most expensive first
    assert [c["task"].cost for c in calls] == sorted(costs, reverse=True)
    priorities = [c["priority"] for c in calls]
    assert priorities == sorted(priorities, reverse=True)
    # a strictly more expensive cell (by at least a millisecond) has a strictly higher priority
    for a in calls:
        for b in calls:
            if a["task"].cost >= b["task"].cost + 1e-3:
                assert a["priority"] > b["priority"], (a["task"].cost, b["task"].cost)
    assert len({c["key"] for c in calls}) == len(calls)  # every cell its own key
    assert all(c["pure"] is False and c["resources"] is None for c in calls)  # CPU cells: no GPU resource
    assert len(results) == len(tasks) and {t.key for t, _ in results} == {t.key for t in tasks}


def test_dask_asks_a_gpu_resource_for_cuda_cells_only(monkeypatch):
    ex = _fake_executor(monkeypatch)
    list(ex.results(_tasks([1.0], device="cuda") + _tasks([2.0], device="cuda:1") + _tasks([3.0], device="cpu")))
    assert [c["resources"] for c in ex.client.calls] == [{"GPU": 1}, {"GPU": 1}, None]


def test_session_hands_tasks_to_the_executor_most_expensive_first(tmp_path):
    """run_profile orders the cells by cost before the executor sees them (any executor)."""
    from claims.session import run_profile

    seen = []

    class Recording:
        kind, workers = "recording", 1

        def results(self, tasks):
            from claims.executors import run_task

            for task in tasks:
                seen.append(task)
                yield task, run_task(task)

        def close(self, *, kill=False):
            pass

        def describe(self):
            return {"kind": self.kind, "workers": 1}

    run_profile("smoke", tmp_path, registry=COSTLY, device="cpu", report=False, executor=Recording())
    claim = COSTLY.get("TOY-COST")
    assert [t.cost for t in seen] == sorted((t.cost for t in seen), reverse=True)
    assert [t.cost for t in seen] == pytest.approx(sorted((cell_cost(claim, c, SMOKE) for c in claim.cells(SMOKE)),
                                                          reverse=True))
    assert len(seen) == len(claim.cells(SMOKE))
