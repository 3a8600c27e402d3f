"""``--shard I/N``: shards 1/3, 2/3, 3/3 run into separate folders and merged give exactly the cells and
verdicts of the unsharded run; the shards are disjoint, deterministic and balanced by cost.

Balance, what is asserted and why. The shards are built by LPT (claims.scheduling.assign_shards:
cells most expensive first, each to the least-loaded shard). Two classical bounds apply:

- Graham's list-scheduling bound, valid for any greedy assignment and checkable without knowing the
  optimum: max shard cost <= total / N + the largest cell cost (asserted on the real toy grid);
- Graham's LPT bound: max shard cost <= (4/3 - 1/(3N)) x the optimal max shard cost (asserted on small
  instances whose optimum is found by brute force, hypothesis-drawn).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import random
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from claims.merge import merge_folders, merged_view
from claims.registry import resolve_registry
from claims.scheduling import assign_shards, cell_cost, parse_shard
from claims.schema import cell_key
from claims.store import load_results
from claims.session import grid_of, run_profile
from claims.profiles import get_profile

SMOKE = get_profile("smoke")
# toy claims with equal costs (tests.toy_claims) and with costs spread over an order of magnitude
SPEC = "tests.toy_claims:TOY,tests.toy_claims_extra:COSTLY"


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The unsharded run and the three shards, each in its own folder (serial, toy claims)."""
    root = tmp_path_factory.mktemp("shards")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNCLAIMS_TOY_SLEEP", "0")
        full = run_profile("smoke", root / "full", registry=SPEC, device="cpu", report=False)
        shards = [run_profile("smoke", root / f"shard{i}", registry=SPEC, device="cpu", report=False,
                              shard=(i, 3)) for i in (1, 2, 3)]
    return root, full, shards


@pytest.fixture(autouse=True)
def _no_toy_sleep(monkeypatch):
    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0")


def _cells(records):
    return {(r["claim"], r["cell_key"]): r["verdict"] for r in records}


def _costs():
    reg = resolve_registry(SPEC)
    grid, broken = grid_of(reg.claims(), SMOKE)
    assert not broken
    return {(c.id, cell_key(cell)): cell_cost(c, cell, SMOKE) for c, cell in grid}


@pytest.mark.slow
def test_shards_are_disjoint_and_cover_the_unsharded_run(runs):
    root, full, shards = runs
    whole = _cells(full.records)
    assert len(whole) == full.total == len(_costs())
    parts = [_cells(s.records) for s in shards]
    assert all(parts), "every shard has cells"
    for a, b in itertools.combinations(parts, 2):
        assert not set(a) & set(b), "shards overlap"
    union = {k: v for part in parts for k, v in part.items()}
    assert union == whole  # the same cells, the same verdicts
    assert sum(s.total for s in shards) == full.total
    for s in shards:
        assert s.meta["complete"] is True and s.meta["cells_total"] == len(s.records)


def test_each_shard_writes_its_own_shard_into_run_json(runs):
    root, full, shards = runs
    for i, s in enumerate(shards, start=1):
        meta = json.loads((root / f"shard{i}" / "results" / "_run.json").read_text())
        assert meta["shard"] == [i, 3] and meta["shards"] == [[i, 3]]
        assert meta["cells_on_disk"] == len(s.records)
    assert full.meta["shard"] is None and full.meta["shards"] == []


def test_merged_view_equals_the_unsharded_run(runs):
    root, full, shards = runs
    view = merged_view([root / f"shard{i}" for i in (1, 2, 3)], registry=SPEC)
    assert not view.invalid
    assert _cells(view.records) == _cells(full.records)
    assert len(view.records) == len(full.records)  # once each
    # the same order as a single folder would give
    assert [(r["claim"], r["cell_key"]) for r in view.records] == \
        [(r["claim"], r["cell_key"]) for r in load_results(root / "full").records]


def test_merge_folders_and_its_run_json_describe_all_shards(runs, tmp_path):
    root, full, shards = runs
    target, view = merge_folders([root / f"shard{i}" for i in (3, 1, 2)], tmp_path / "merged", registry=SPEC)
    merged = load_results(target, resolve_registry(SPEC).ids())
    assert not merged.invalid
    assert _cells(merged.records) == _cells(full.records)
    run = merged.run
    assert run["source"] == "rnnclaims merge" and run["profile"] == "smoke" and run["seed"] == 0
    by_shard = {tuple(s["shard"]): s for s in run["shards"]}
    assert set(by_shard) == {(1, 3), (2, 3), (3, 3)}
    for i, s in enumerate(shards, start=1):
        entry = by_shard[(i, 3)]
        assert entry["folder"] == str(root / f"shard{i}" / "results")  # each shard's folder, not another's
        assert entry["cells_on_disk"] == len(s.records) and entry["complete"] is True
    assert run["shards_cover_run"] is True and run["complete"] is True
    assert run["cells_on_disk"] == full.total
    assert run["verdicts"] == full.meta["verdicts"]
    assert run["per_claim"].keys() == full.meta["per_claim"].keys()
    for cid, info in run["per_claim"].items():
        assert (info["cells"], info["verdicts"]) == (full.meta["per_claim"][cid]["cells"],
                                                     full.meta["per_claim"][cid]["verdicts"])
    assert run["wall_s"] == pytest.approx(max(s.meta["wall_s"] for s in shards))
    assert run["cpu_s"] == pytest.approx(sum(float(r["duration_s"]) for r in merged.records))
    worker_pids = {w["pid"] for w in run["workers"]}
    assert worker_pids == {w["pid"] for s in shards for w in s.meta["workers"]}


def test_merged_run_json_without_one_shard_is_not_complete(runs, tmp_path):
    root, full, shards = runs
    view = merged_view([root / "shard1", root / "shard3"], registry=SPEC)
    assert view.run["shards_cover_run"] is False and view.run["complete"] is False
    assert len(view.records) == full.total - len(shards[1].records)


def test_merged_run_json_names_the_right_folder_when_one_has_no_run_json(runs, tmp_path):
    root, full, shards = runs
    for i in (1, 2, 3):
        shutil.copytree(root / f"shard{i}", tmp_path / f"s{i}")
    os.remove(tmp_path / "s1" / "results" / "_run.json")
    view = merged_view([tmp_path / f"s{i}" for i in (1, 2, 3)], registry=SPEC)
    folders = {tuple(s["shard"]) if s["shard"] else None: s["folder"] for s in view.run["shards"]}
    assert folders.get((2, 3)) == str(tmp_path / "s2" / "results")
    assert folders.get((3, 3)) == str(tmp_path / "s3" / "results")


@pytest.mark.slow
def test_cli_merge_of_the_shards(runs, tmp_path):
    from claims.cli import main

    root, full, shards = runs
    out, err = io.StringIO(), io.StringIO()
    code = main(["merge", *[str(root / f"shard{i}") for i in (1, 2, 3)], "--out", str(tmp_path / "m"),
                 "--registry", SPEC], stdout=out, stderr=err)
    assert code == 0, err.getvalue()
    assert f"merged {full.total} records from 3 folder(s)" in out.getvalue()
    assert (tmp_path / "m" / "index.html").is_file()
    merged = load_results(tmp_path / "m")
    assert _cells(merged.records) == _cells(full.records)
    assert sorted(tuple(s["shard"]) for s in merged.run["shards"]) == [(1, 3), (2, 3), (3, 3)]


def test_more_shards_than_cells_gives_empty_shards_that_merge(tmp_path):
    kw = dict(registry="tests.toy_claims:TOY", claims="TOY-FAILS", device="cpu", report=False)
    parts = [run_profile("smoke", tmp_path / f"s{i}", shard=(i, 3), **kw) for i in (1, 2, 3)]
    assert [len(p.records) for p in parts] == [1, 0, 0]
    assert all(p.meta["complete"] for p in parts)
    view = merged_view([tmp_path / f"s{i}" for i in (1, 2, 3)], registry="tests.toy_claims:TOY")
    assert [(r["claim"], r["verdict"]) for r in view.records] == [("TOY-FAILS", "fails")]
    assert view.run["shards_cover_run"] is True and view.run["complete"] is True


# --------------------------------------------------------------------------------------------------
# the assignment


def test_assignment_is_deterministic_and_independent_of_the_input_order():
    reg = resolve_registry(SPEC)
    grid, _ = grid_of(reg.claims(), SMOKE)
    costs = _costs()
    ids = [c.id for c in reg.claims()]

    def assign(items):
        shards = assign_shards(items, 3, lambda it: costs[(it[0].id, cell_key(it[1]))],
                               lambda it: (ids.index(it[0].id), cell_key(it[1])))
        return [[(c.id, cell_key(cell)) for c, cell in s] for s in shards]

    first = assign(grid)
    assert assign(grid) == first
    rng = random.Random(0)
    for _ in range(5):
        shuffled = grid[:]
        rng.shuffle(shuffled)
        assert assign(shuffled) == first


def test_the_same_shard_twice_in_fresh_folders_takes_the_same_cells(runs, tmp_path):
    root, full, shards = runs
    again = run_profile("smoke", tmp_path / "again", registry=SPEC, device="cpu", report=False, shard=(2, 3))
    assert set(_cells(again.records)) == set(_cells(shards[1].records))


def test_resuming_a_shard_in_its_own_folder_keeps_its_cells(runs, tmp_path):
    root, full, shards = runs
    shutil.copytree(root / "shard2", tmp_path / "shard2")
    again = run_profile("smoke", tmp_path / "shard2", registry=SPEC, device="cpu", report=False, shard=(2, 3))
    assert again.ran == 0 and again.resumed == len(shards[1].records)
    assert set(_cells(again.records)) == set(_cells(shards[1].records))


def test_shards_are_balanced_within_grahams_bound(runs):
    """max shard cost <= total / 3 + the largest cell (see the module docstring), from the costs the
    records carry (what the scheduler used)."""
    root, full, shards = runs
    loads = [sum(float(r["cost"]) for r in s.records) for s in shards]
    cell_costs = [float(r["cost"]) for r in full.records]
    assert sum(loads) == pytest.approx(sum(cell_costs))
    assert max(loads) <= sum(cell_costs) / 3 + max(cell_costs) + 1e-9
    # and balanced by cost, not by count: the costs spread over an order of magnitude
    assert max(cell_costs) >= 10 * min(cell_costs)
    assert max(loads) / min(loads) < 1.5


def _optimum(costs, n):
    best = float("inf")
    for assignment in itertools.product(range(n), repeat=len(costs)):
        loads = [0.0] * n
        for c, s in zip(costs, assignment):
            loads[s] += c
        best = min(best, max(loads))
    return best


@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(st.lists(st.integers(1, 50), min_size=1, max_size=8), st.integers(2, 3))
def test_lpt_is_within_four_thirds_of_the_optimum(costs, n):
    items = list(enumerate(costs))
    shards = assign_shards(items, n, lambda it: it[1], lambda it: it[0])
    assert sorted(i for s in shards for i, _ in s) == list(range(len(costs)))  # disjoint, complete
    makespan = max(sum(c for _, c in s) for s in shards)
    assert makespan <= (4 / 3 - 1 / (3 * n)) * _optimum(costs, n) + 1e-9
    assert makespan <= sum(costs) / n + max(costs) + 1e-9


def test_assign_shards_rejects_a_bad_count():
    for bad in (0, -1, 1.5, True, "3"):
        with pytest.raises(ValueError, match="number of shards"):
            assign_shards([1, 2], bad, float, int)
    assert assign_shards([], 3, float, int) == [[], [], []]


# --------------------------------------------------------------------------------------------------
# parse_shard


def test_parse_shard_accepts_i_of_n():
    assert parse_shard("1/3") == (1, 3)
    assert parse_shard(" 3 / 3 ") == (3, 3)
    assert parse_shard("1/1") == (1, 1)


@pytest.mark.parametrize("text", ["0/3", "4/3", "3", "a/b", "1/0", "-1/3", "1/3/4", "", "1.0/3", "1/-3", "1 3"])
def test_parse_shard_rejects_bad_input_with_one_line_naming_shard(text):
    with pytest.raises(ValueError) as info:
        parse_shard(text)
    message = str(info.value)
    assert "--shard" in message and "\n" not in message and repr(text) in message


def test_cli_rejects_a_bad_shard_before_running(tmp_path):
    from claims.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(["run", "--profile", "smoke", "--shard", "4/3", "--out", str(tmp_path / "o"),
                 "--registry", "tests.toy_claims:TOY", "--no-report"], stdout=out, stderr=err)
    assert code == 2
    lines = err.getvalue().splitlines()
    assert len(lines) == 1 and "--shard" in lines[0] and lines[0].startswith("rnnclaims: error: ")
    assert not (tmp_path / "o").exists()
