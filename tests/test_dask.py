"""The Dask executor on a real ``distributed.LocalCluster`` (worker processes, loopback only).

(a) ``run_profile(..., dask_local=2)`` of the toy claims plus two real FWD cells gives the records of
    the process pool (``workers=2``) for the same seed: verdicts, examples, recipes, margins, measured
    values, series, constants, shrinking, messages; and the records of the serial executor (the draws
    do not depend on which modules a process imported: claims.sampling's provider ignores hypothesis's
    "local constants");
(b) killing one Dask worker process by PID mid-run (on the first finished cell) loses no cell and
    duplicates none: one record per cell, every record valid, every verdict what the claim gives;
(c) the controller writes every record: with a WorkerPlugin that makes the worker processes unable to
    open, create or rename anything under the output folder, the run still writes every record;
and ``scheduler=ADDRESS`` runs on a cluster started here (scheduler on 127.0.0.1), submitting the most
expensive cells first with a priority that grows with the cost, and leaves that cluster running.

These tests start worker processes (seconds each on an idle 2-core machine); they are marked slow.
"""

from __future__ import annotations

import json
import math
import os
import signal

import pytest
import torch

distributed = pytest.importorskip("distributed")

import claims.session as session  # noqa: E402
from claims.environment import threads_per_worker  # noqa: E402
from claims.store import load_results, record_path  # noqa: E402
from claims.session import run_profile  # noqa: E402
from tests.toy_claims import TOY  # noqa: E402
from tests.toy_claims_extra import DenyFolder, try_write_under  # noqa: E402

pytestmark = pytest.mark.slow

SPEC = "tests.toy_claims:TOY,tests.toy_claims_extra:FEW"  # two catalogues: the spec travels to the workers
# fields that say where and when a cell ran, not what it found
VOLATILE = {"duration_s", "started", "worker", "git_commit", "versions", "traceback"}
# worker processes of the pool and Dask runs compared with the serial run
WORKERS = 2


@pytest.fixture(scope="module")
def no_sleep():
    """TOY-SLOW without its sleep, for every process started while the fixture is active."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RNNCLAIMS_TOY_SLEEP", "0")
        yield


def _run(out, **kw):
    return run_profile("smoke", out, registry=kw.pop("registry", SPEC), device="cpu", report=False, **kw)


class _Capture:
    """Wraps session.make_executor to keep the executor the run builds (and what it looked like)."""

    def __init__(self):
        self.executor = None
        self.addresses: list[str] = []
        self.real = session.make_executor

    def __call__(self, **kw):
        self.executor = ex = self.real(**kw)
        client = getattr(ex, "client", None)
        if client is not None:
            info = client.scheduler_info()
            self.addresses = [info["address"], *info.get("workers", {})]
        return ex


@pytest.fixture(scope="module")
def serial_run(no_sleep, tmp_path_factory):
    """In this process, at the thread count of one pool or Dask worker (WORKERS of them): float32 sums are
    reduced in a thread-count-dependent order, so records are bit-equal only at equal thread counts
    (under plain ``pytest`` this process has every core; under ``pytest -n 2`` it has 1)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads_per_worker(WORKERS))
    try:
        return _run(tmp_path_factory.mktemp("serial") / "out")
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def pool_run(no_sleep, tmp_path_factory):
    return _run(tmp_path_factory.mktemp("pool") / "out", workers=WORKERS)


@pytest.fixture(scope="module")
def dask_run(no_sleep, tmp_path_factory):
    capture = _Capture()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(session, "make_executor", capture)
        summary = _run(tmp_path_factory.mktemp("dask") / "out", dask_local=WORKERS)
    return summary, capture


def _by_cell(records):
    return {(r["claim"], r["cell_key"]): r for r in records}


def _same_value(a, b, path=""):
    """Equal, with floats compared to 1e-9 relative (worker processes may use other thread counts)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{path}: keys {sorted(a)} != {sorted(b)}"]
        return [d for k in a for d in _same_value(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} items != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _same_value(x, y, f"{path}[{i}]")]
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-300) or (math.isnan(a) and math.isnan(b)):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    return [] if a == b and type(a) is type(b) else [f"{path}: {a!r} != {b!r}"]


def _assert_same_records(expected, got, what):
    want, have = _by_cell(expected), _by_cell(got)
    assert want.keys() == have.keys(), f"{what}: other cells"
    problems = []
    for key, a in want.items():
        b = have[key]
        fields_a, fields_b = ({k: v for k, v in r.items() if k not in VOLATILE} for r in (a, b))
        for fields in (fields_a, fields_b):  # a threshold search's seconds per length are volatile too
            if "thresholds" in fields:
                fields["thresholds"] = [{k: v for k, v in t.items() if k != "cost_s"} for t in fields["thresholds"]]
        if a["verdict"] == "skipped":  # the memory guard's message names the memory available right now
            for fields in (fields_a, fields_b):
                fields["reason"] = fields["message"] = fields["message"].split(",")[0]
        problems += [f"{what} {key[0]}/{key[1]}{d}" for d in _same_value(fields_a, fields_b)]
    assert not problems, "\n".join(problems[:20])


# --------------------------------------------------------------------------------------------------
# (a) the same records on every executor


def test_every_executor_ran_every_cell_in_its_own_processes(serial_run, pool_run, dask_run):
    dask, capture = dask_run
    for summary in (serial_run, pool_run, dask):
        assert summary.ran == summary.total == len(summary.records) and summary.interrupted is None
        assert not load_results(summary.results_dir, TOY.ids() + ["FWD"]).invalid
    verdicts = {(r["claim"], r["verdict"]) for r in serial_run.records}
    # the comparisons below cover every kind of record, real numerics included
    assert {("TOY-FAILS", "fails"), ("TOY-RAISES", "error"), ("TOY-MEMORY", "skipped"), ("FWD", "holds"),
            ("FWD", "fails")} <= verdicts
    fwd = [r for r in serial_run.records if r["claim"] == "FWD"]
    assert len(fwd) == 3 and sum(bool(r["measured"]) for r in fwd) == 2  # the grid cell and the control
    assert [r["thresholds"][0]["status"] for r in fwd if r.get("kind") == "threshold"] in (["found"], ["below"])
    me = os.getpid()
    assert {r["worker"]["pid"] for r in serial_run.records} == {me}
    assert me not in {r["worker"]["pid"] for r in pool_run.records}
    assert me not in {r["worker"]["pid"] for r in dask.records}


def test_verdicts_are_the_same_on_every_executor(serial_run, pool_run, dask_run):
    dask, _ = dask_run

    def verdicts(summary):
        return {(r["claim"], r["cell_key"]): r["verdict"] for r in summary.records}

    assert verdicts(dask) == verdicts(pool_run) == verdicts(serial_run)
    assert serial_run.verdict_counts() == pool_run.verdict_counts() == dask.verdict_counts()


def test_dask_records_equal_pool_records(pool_run, dask_run):
    """Recipes, margins, measured values, series, constants, shrinking: all equal (worker vs worker)."""
    dask, _ = dask_run
    _assert_same_records(pool_run.records, dask.records, "dask vs pool")


def test_dask_and_pool_records_equal_serial_records(serial_run, pool_run, dask_run):
    dask, _ = dask_run
    _assert_same_records(serial_run.records, pool_run.records, "pool vs serial")
    _assert_same_records(serial_run.records, dask.records, "dask vs serial")


_DRAWS = """
import sys
from hypothesis import strategies as st
from claims.sampling import draw_recipes
strategy = st.fixed_dictionaries({"x": st.integers(0, 100), "seed": st.integers(0, 2**16)})
before = draw_recipes(strategy, 40, seed=123)
sys.path.insert(0, sys.argv[1])
import rnnclaims_unrelated_local_module  # any module outside site-packages with integer literals
after = draw_recipes(strategy, 40, seed=123)
print("same" if before == after else "different")
"""


def test_draws_do_not_depend_on_the_modules_the_process_imported(tmp_path):
    """The root cause of the serial / worker difference, in a subprocess (the module it imports would
    change the draws of this process too)."""
    import subprocess
    import sys

    (tmp_path / "rnnclaims_unrelated_local_module.py").write_text("LIMITS = (777, 4242, 31337, 60000)\n")
    out = subprocess.run([sys.executable, "-c", _DRAWS, str(tmp_path)], capture_output=True, text=True,
                         timeout=120, cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "same"


def test_dask_local_cluster_is_loopback_and_described_in_run_json(dask_run):
    dask, capture = dask_run
    assert capture.executor is not None and capture.executor.kind == "dask"
    assert len(capture.addresses) == 3  # the scheduler and two workers
    assert all(a.startswith("tcp://127.0.0.1:") for a in capture.addresses), capture.addresses
    meta = json.loads((dask.results_dir / "_run.json").read_text())
    assert meta["executor"] == {"kind": "dask", "workers": 2, "address": "LocalCluster (127.0.0.1)"}
    pids = {w["pid"] for w in meta["workers"]}
    sent = {r["worker"]["pid"] for r in dask.records if r["worker"]["pid"] is not None}  # None: not sent (memory)
    assert pids == sent and os.getpid() not in pids
    assert meta["complete"] is True and meta["cells_on_disk"] == dask.total
    assert capture.executor.cluster is None  # closed by the run


# --------------------------------------------------------------------------------------------------
# (b) a worker killed mid-run


def test_killing_a_dask_worker_mid_run_loses_no_cell_and_duplicates_none(tmp_path, monkeypatch):
    monkeypatch.setenv("RNNCLAIMS_TOY_SLEEP", "0.04")  # 12 cells of >= 12 examples: ~0.5 s per cell
    capture = _Capture()
    monkeypatch.setattr(session, "make_executor", capture)
    out = tmp_path / "out"
    events: list[tuple[str, str]] = []
    killed: dict = {}

    def progress(event):
        if event.kind != "cell":
            return
        events.append((event.claim, event.cell_key))
        if killed:
            return
        pids = capture.executor.worker_pids()
        finished_by = json.loads(record_path(out / "results", event.claim, event.cell_key).read_text())["worker"]["pid"]
        victim = next((p for p in pids if p != finished_by), pids[0])  # the worker still busy
        os.kill(victim, signal.SIGKILL)
        killed.update(pid=victim, pids=pids, left=event.total - event.done)

    summary = _run(out, registry=TOY, claims="TOY-SLOW", dask_local=2, progress=progress)
    cells = {(c["m"], c["L"], c["r"]) for c in TOY.get("TOY-SLOW").cells(session.get_profile("smoke"))}
    assert killed and len(killed["pids"]) == 2 and killed["left"] >= 4, killed  # killed while cells were left
    # no cell lost, none duplicated
    assert len(events) == len(set(events)) == summary.total == len(cells) == 12
    assert summary.ran == 12 and summary.interrupted is None
    loaded = load_results(out, TOY.ids())
    assert loaded.invalid == []
    assert len(loaded.records) == 12
    assert {(r["cell"]["m"], r["cell"]["L"], r["cell"]["r"]) for r in loaded.records} == cells
    assert [r["verdict"] for r in loaded.records] == ["holds"] * 12, [r["message"] for r in loaded.records]
    assert loaded.run["complete"] is True and loaded.run["cells_on_disk"] == 12
    assert not [p for p in (out / "results").rglob("*") if p.name.startswith(".tmp-")]


# --------------------------------------------------------------------------------------------------
# a scheduler address, and workers without access to the output folder


@pytest.fixture(scope="module")
def own_cluster(no_sleep):
    """A LocalCluster started by the test, its scheduler on 127.0.0.1."""
    from tests.cluster_toys import loopback_cluster

    with loopback_cluster(2) as cluster:
        yield cluster


def test_run_on_a_scheduler_address(own_cluster, pool_run, tmp_path, monkeypatch):
    from distributed import Client

    address = own_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    submitted = []
    real_submit = Client.submit

    def submit(self, fn, *args, **kwargs):
        submitted.append((args[0].cost, kwargs.get("priority"), args[0].key))
        return real_submit(self, fn, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", submit)
    summary = _run(tmp_path / "out", scheduler=address)
    _assert_same_records(pool_run.records, summary.records, "scheduler vs pool")
    assert summary.meta["executor"] == {"kind": "dask", "workers": 2, "address": address}
    with Client(address) as client:
        worker_pids = set(client.run(os.getpid).values())
    assert {w["pid"] for w in summary.meta["workers"]} <= worker_pids  # the cells ran on that cluster
    assert len(own_cluster.scheduler.workers) == 2  # and it is still running
    # most expensive first, priority growing with the cost
    not_sent = [r for r in summary.records if r["worker"]["pid"] is None]
    assert [r["claim"] for r in not_sent] == ["TOY-MEMORY"]  # no worker's memory limit holds it
    assert len(submitted) == summary.total - len(not_sent)
    costs = [c for c, _, _ in submitted]
    priorities = [p for _, p, _ in submitted]
    assert costs == sorted(costs, reverse=True) and len(set(costs)) > 1
    assert priorities == sorted(priorities, reverse=True) and len(set(priorities)) > 1
    for cost_a, prio_a, _ in submitted:
        for cost_b, prio_b, _ in submitted:
            if cost_a >= cost_b + 1e-3:
                assert prio_a > prio_b


def test_controller_writes_records_when_workers_cannot_access_the_output(own_cluster, pool_run, tmp_path):
    from distributed import Client

    out = tmp_path / "out"
    out.mkdir()
    with Client(own_cluster.scheduler_address) as client:
        client.register_plugin(DenyFolder(str(out)), name="deny-folder")
        try:
            assert set(client.run(try_write_under, str(out)).values()) == {"denied"}  # the plugin is active
            summary = _run(out, scheduler=own_cluster.scheduler_address)
        finally:
            client.unregister_worker_plugin("deny-folder")
    assert not (out / "probe.txt").exists()
    loaded = load_results(out, TOY.ids() + ["FWD"])
    assert loaded.invalid == []
    assert len(loaded.records) == summary.total == len(pool_run.records)
    assert summary.ran == summary.total
    _assert_same_records(pool_run.records, loaded.records, "no-access vs pool")
    assert os.getpid() not in {r["worker"]["pid"] for r in loaded.records}  # computed by the workers
    assert loaded.run["complete"] is True


def test_dask_tasks_silence_only_hypothesis_cross_thread_random_note():
    """A Dask worker's event-loop thread moves the global random state while a cell draws; Hypothesis
    reports that as "Do not use the `random` module inside strategies". run_task_on_dask silences that
    one message (and still runs the cell); other Hypothesis deprecations still show."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    from claims.executors import Task, run_task_on_dask
    from claims.profiles import get_profile

    task = Task(registry="tests.toy_claims:TOY", claim_id="TOY-HOLDS", cell={"m": 8, "L": 2},
                profile=get_profile("smoke"), device="cpu")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        record = run_task_on_dask(task)
        warnings.warn("Do not use the `random` module inside strategies; instead ...", HypothesisDeprecationWarning)
        warnings.warn("some other deprecation", HypothesisDeprecationWarning)
    assert record["verdict"] == "holds"
    assert [str(w.message) for w in seen if w.category is HypothesisDeprecationWarning] == ["some other deprecation"]
