"""One run of claim cells into a results folder, the same for every front end (``rnnclaims run``,
``pytest claims``, ``rnnclaims merge``):

1. **plan** (:func:`plan`): every (claim, cell) of the profile for the selected claims; with
   ``--shard I/N`` the cost-balanced 1/N (:mod:`claims.scheduling`); the run's identity (source,
   profile, seed, dtype policy, commit).
2. **reconcile** the folder (:func:`reconcile`), under its lock (:class:`claims.store.ResultsFolder`):
   records of another profile, seed, dtype or commit make the run refuse with :class:`RunConflict`
   (one line naming both and the front end's fresh option), unless the user asked to start fresh
   (``--fresh`` / ``--claims-fresh``: those records, and the selected claims' records, are deleted);
   invalid files are named, never counted, and set aside (renamed ``*.json.invalid``) only when this
   run writes that cell; records of the selected claims whose cell left the grid are pruned; the
   valid records of this run's cells are resumable.
3. **execute** (:func:`execute`): the cells left, most expensive first, on an executor
   (:mod:`claims.executors`); each record is written atomically as it arrives; SIGINT / SIGTERM stop
   scheduling and keep every written record (a second signal kills the workers). ``pytest claims``
   executes its own items instead and writes their records as they arrive.
4. **finalize** (:func:`finalize`): ``_run.json`` from the records on disk (its counts are exactly
   the records there), appending this sitting to the run's history.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from claims.base import Claim
from claims.cell import error_record, network_dtype
from claims.environment import environment_info, git_commit, now
from claims.executors import Executor, Task
from claims.profiles import Profile
from claims.registry import Registry
from claims.scheduling import assign_shards, calibrate, cell_cost, order_by_cost
from claims.schema import SCHEMA, cell_key, count_verdicts, disagreements, identity_of, json_safe
from claims.store import RUN_META, ResultsFolder, per_claim_summary, record_path

__all__ = [
    "RunInterrupted",
    "RunConflict",
    "Plan",
    "Reconciled",
    "ProgressEvent",
    "RunSummary",
    "grid_of",
    "plan",
    "conflict_of",
    "reconcile",
    "execute",
    "finalize",
    "warn_stderr",
]


def warn_stderr(line: str) -> None:
    """The default place for lines about the folder (invalid files, pruned records): stderr."""
    sys.stderr.write(f"rnnclaims: {line}\n")
    sys.stderr.flush()


class RunInterrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT / SIGTERM during a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class RunConflict(ValueError):
    """The results folder holds records of another profile, seed, dtype policy or commit."""


# --------------------------------------------------------------------------------------------------
# 1. plan


def grid_of(selected: list[Claim], profile: Profile) -> tuple[list[tuple[Claim, dict]], list[tuple[Claim, str]]]:
    """Every (claim, cell) of ``profile``, and (claim, message) for claims whose cells() failed."""
    grid: list[tuple[Claim, dict]] = []
    broken: list[tuple[Claim, str]] = []
    for claim in selected:
        try:
            cells = list(claim.cells(profile))
            keys = [cell_key(c) for c in cells]
            if len(set(keys)) != len(keys):
                raise ValueError("cells() returned duplicate cells")
        except Exception as exc:
            broken.append((claim, f"cells: {type(exc).__name__}: {exc}"))
            continue
        grid.extend((claim, cell) for cell in cells)
    return grid, broken


def _keys(grid: list[tuple[Claim, dict]], broken: list[tuple[Claim, str]]) -> set[tuple[str, str]]:
    """(claim, cell_key) of the grid's cells and of the error record of each broken claim."""
    return {(c.id, cell_key(cell)) for c, cell in grid} | {(c.id, "cells_error=True") for c, _ in broken}


@dataclass
class Plan:
    """What one run is: its identity and its cells."""

    source: str  # "rnnclaims run" | "pytest claims"
    registry: Registry
    selected: list[Claim]
    profile: Profile
    seed: int
    dtype: str  # the run's dtype policy ("auto" or "float64")
    grid: list[tuple[Claim, dict]]  # this run's cells (one shard's with --shard)
    broken: list[tuple[Claim, str]]  # claims whose cells() failed, with the message
    full_keys: set[tuple[str, str]]  # every cell of the selected claims (pruning keeps these)
    estimates: dict[tuple[str, str], float]  # the cost model's seconds per cell, uncalibrated
    shard: tuple[int, int] | None = None
    commit: str | None = None
    started: str = ""
    t_start: float = 0.0

    @property
    def by_id(self) -> dict[str, Claim]:
        return {c.id: c for c in self.registry.claims()}

    @property
    def keys(self) -> set[tuple[str, str]]:
        """The (claim, cell_key) of every cell this run writes."""
        return _keys(self.grid, self.broken)

    def rank(self, claim_id: str) -> int:
        return [c.id for c in self.selected].index(claim_id)


def plan(source: str, registry: Registry, selected: list[Claim], profile: Profile, *, seed: int = 0,
         dtype: str = "auto", shard: tuple[int, int] | None = None) -> Plan:
    """The run's cells (one shard's by the uncalibrated cost estimates, so that the same grid gives the
    same shards in every folder and sitting) and its identity."""
    grid, broken = grid_of(selected, profile)
    full_keys = _keys(grid, broken)
    estimates = {(c.id, cell_key(cell)): cell_cost(c, cell, profile) for c, cell in grid}
    ids = [c.id for c in selected]
    if shard is not None:
        i, n = shard
        grid = assign_shards(grid, n, lambda item: estimates[(item[0].id, cell_key(item[1]))],
                             lambda item: (ids.index(item[0].id), cell_key(item[1])))[i - 1]
    return Plan(source=source, registry=registry, selected=list(selected), profile=profile, seed=seed, dtype=dtype,
                grid=grid, broken=broken, full_keys=full_keys, estimates=estimates, shard=shard,
                commit=git_commit(), started=now(), t_start=time.perf_counter())


# --------------------------------------------------------------------------------------------------
# 2. reconcile the folder


@dataclass
class Reconciled:
    """What the folder holds for this run."""

    resumed: list[dict]  # valid, finished records of this run's cells (not run again)
    todo: list[tuple[Claim, dict]]  # this run's cells without such a record
    invalid: list[tuple[Path, str]]  # files that are not valid records, with the reason
    cost: dict[tuple[str, str], float]  # the cost estimates, calibrated by the folder's records


def conflict_of(record: dict, run: Plan) -> str | None:
    """Why ``record`` cannot stand beside this run's records (another profile, seed, commit, or dtype
    for its claim), or None."""
    theirs = identity_of(record)
    if theirs["profile"] != run.profile.name:
        return f"profile {theirs['profile']!r}"
    if theirs["seed"] != run.seed:
        return f"seed {theirs['seed']}"
    if run.commit and theirs["commit"] and theirs["commit"] != run.commit:
        return f"commit {theirs['commit']}"
    claim = run.by_id.get(record["claim"])
    if claim is not None and theirs["dtype"] != network_dtype(claim, run.dtype):
        return f"dtype {theirs['dtype']} for {claim.id}"
    return None


def reconcile(folder: ResultsFolder, run: Plan, *, fresh: bool = False, fresh_option: str = "--fresh",
              warn: Callable[[str], None]) -> Reconciled:
    """Apply the folder rules of the module docstring (step 2); raises :class:`RunConflict`."""
    by_id = run.by_id
    scan = folder.scan(by_id)
    factors = calibrate(scan.records, run.estimates)
    cost = {k: v * factors.get(k[0], 1.0) for k, v in run.estimates.items()}
    for path, reason in scan.invalid:
        warn(f"could not read {path}: {reason} (not counted)")
    conflicts = [(r, why) for r in scan.records if (why := conflict_of(r, run))]
    if conflicts and not fresh:
        record, why = conflicts[0]
        raise RunConflict(
            f"results folder {folder.path} holds {len(conflicts)} record(s) of {why} (e.g. {record['claim']}/"
            f"{record['cell_key']}); this run is profile {run.profile.name!r}, seed {run.seed}, commit "
            f"{run.commit or 'unknown'}, dtype {run.dtype}: use another --out, or {fresh_option} to "
            "delete them and start over")
    selected_ids = {c.id for c in run.selected}
    conflicting = {id(r) for r, _ in conflicts}
    existing: dict[tuple[str, str], dict] = {}
    for record in scan.records:
        key = (record["claim"], record["cell_key"])
        path = record_path(folder.path, *key)
        if fresh and (record["claim"] in selected_ids or id(record) in conflicting):
            folder.remove(path)  # the user asked to start over
        elif record["claim"] in selected_ids and key not in run.full_keys:
            folder.remove(path)
            warn(f"removed stale record {path} (cell no longer in the {run.profile.name} grid of {record['claim']})")
        else:
            existing[key] = record
    invalid_paths = {Path(p) for p, _ in scan.invalid}
    resumed, todo = [], []
    for claim, cell in run.grid:
        key = (claim.id, cell_key(cell))
        record = existing.get(key)
        if record is not None and record.get("verdict") != "error" and record.get("cell") == json_safe(cell):
            resumed.append(record)
            continue
        path = record_path(folder.path, *key)
        if path in invalid_paths and path.exists():
            moved = folder.set_aside(path)
            warn(f"set {path} aside as {moved.name}; this run writes the cell again")
        todo.append((claim, cell))
    return Reconciled(resumed=resumed, todo=todo, invalid=list(scan.invalid), cost=cost)


# --------------------------------------------------------------------------------------------------
# 3. execute


@dataclass(frozen=True)
class ProgressEvent:
    """What a run tells its progress callback.

    kind: "start", "cell" (a cell finished) or "finish"; done / total count cells (resumed ones
    included); cost_done / cost_total are the cost estimates (seconds) of this sitting's cells, which
    weigh the ETA.
    """

    kind: str
    done: int
    total: int
    resumed: int
    elapsed_s: float
    cost_done: float = 0.0
    cost_total: float = 0.0
    claim: str | None = None
    cell_key: str | None = None
    verdict: str | None = None

    @property
    def eta_s(self) -> float | None:
        """Seconds left, from the elapsed time and the share of the estimated cost done."""
        if self.cost_done <= 0 or self.cost_total <= 0:
            return None
        return self.elapsed_s * max(0.0, self.cost_total - self.cost_done) / self.cost_done


@dataclass
class RunSummary:
    """The outcome of a run."""

    out_dir: Path
    results_dir: Path
    profile: str
    device: str
    records: list[dict] = field(default_factory=list)  # every cell of the run, resumed ones included
    ran: int = 0
    resumed: int = 0
    total: int = 0
    per_claim_wall_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    interrupted: int | None = None  # the signal number when interrupted
    report_path: Path | None = None  # set by the front end that builds the report
    report_error: str | None = None
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def verdict_counts(self) -> dict[str, int]:
        return count_verdicts(self.records)

    def disagreements(self) -> list[dict]:
        """Must-hold cells that do not hold and controls that do not fail (``--strict``)."""
        return disagreements(self.records)


class _Signals:
    """SIGINT / SIGTERM raise :class:`RunInterrupted` in the main thread; during clean-up a second
    signal kills the workers at once.

    The signal is also remembered (``received``): library code running in the main thread may catch the
    exception (a SIGINT sent while a Dask LocalCluster starts is caught there), so the run calls
    :meth:`check` after the executor starts and after every cell."""

    def __init__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        self.previous: dict[int, Any] = {}
        self.on_second: Callable[[], None] | None = None
        self.received: int | None = None

    def __enter__(self) -> "_Signals":
        if self.active:
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._raise)
        return self

    def _raise(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise RunInterrupted(signum)

    def check(self) -> None:
        """Raise RunInterrupted if a signal arrived whose exception something else swallowed."""
        if self.received is not None:
            raise RunInterrupted(self.received)

    def _second(self, signum: int, frame: Any) -> None:
        if self.on_second is not None:
            self.on_second()

    def cleaning_up(self, on_second: Callable[[], None]) -> None:
        self.on_second = on_second
        if self.active:
            for sig in self.previous:
                signal.signal(sig, self._second)

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            for sig, handler in self.previous.items():
                signal.signal(sig, handler)


def _kill_now(ex: Executor) -> None:
    try:
        ex.close(kill=True)
    except Exception:
        pass


def execute(folder: ResultsFolder, run: Plan, found: Reconciled, *, device: Any, executor: Executor | None,
            make_executor: Callable[[], Executor], threads: int | None = None,
            progress: Callable[[ProgressEvent], None] | None = None,
            warn: Callable[[str], None]) -> RunSummary:
    """Evaluate ``found.todo`` on ``executor`` (made by ``make_executor`` when None and there is work),
    writing each record as it arrives, then :func:`finalize`. A failed write or a broken executor is
    raised after clean-up and after ``_run.json`` is written; a signal ends the run ``interrupted``."""
    summary = RunSummary(out_dir=folder.out_dir, results_dir=folder.path, profile=run.profile.name,
                         device=str(device), invalid=found.invalid)
    for claim, message in run.broken:
        record = error_record(claim, {"cells_error": True}, run.profile, device, message, seed=run.seed,
                              dtype=network_dtype(claim, run.dtype))
        folder.write(record)
        summary.records.append(record)
    summary.records.extend(found.resumed)
    summary.resumed = len(found.resumed)
    summary.total = len(run.grid) + len(run.broken)
    tasks = [Task(registry=run.registry.spec, claim_id=claim.id, cell=cell, profile=run.profile, device=str(device),
                  seed=run.seed, dtype=run.dtype, cost=found.cost[(claim.id, cell_key(cell))], threads=threads,
                  key=f"{claim.id}/{cell_key(cell)}")
             for claim, cell in found.todo]
    tasks = order_by_cost(tasks, lambda t: t.cost, lambda t: (run.rank(t.claim_id), t.key))
    cost_total = sum(t.cost for t in tasks)
    cost_done = 0.0
    workers_seen: dict[tuple, dict] = {}

    def emit(kind: str, record: dict | None = None) -> None:
        if progress is not None:
            progress(ProgressEvent(kind=kind, done=len(summary.records), total=summary.total,
                                   resumed=summary.resumed, elapsed_s=time.perf_counter() - run.t_start,
                                   cost_done=cost_done, cost_total=cost_total,
                                   claim=(record or {}).get("claim"), cell_key=(record or {}).get("cell_key"),
                                   verdict=(record or {}).get("verdict")))

    ex = executor
    pending_error: BaseException | None = None
    with _Signals() as signals:
        try:
            emit("start")
            if tasks:
                if ex is None:
                    ex = make_executor()
                signals.check()
                for task, record in ex.results(tasks):
                    folder.write(record)
                    summary.records.append(record)
                    summary.ran += 1
                    cost_done += task.cost
                    w = record.get("worker") or {}
                    if w.get("pid") is not None:  # None: the controller recorded the cell without sending it
                        workers_seen.setdefault((w.get("host"), w.get("pid")), w)
                    emit("cell", record)
                    signals.check()
        except KeyboardInterrupt as exc:
            summary.interrupted = getattr(exc, "signum", signal.SIGINT)
        except BaseException as exc:  # a failed write, a broken executor: report this one, after clean-up
            pending_error = exc
        finally:
            if ex is not None:
                signals.cleaning_up(lambda: _kill_now(ex))
                ex.close(kill=False)
            summary.wall_s = time.perf_counter() - run.t_start
            try:
                summary.meta = finalize(
                    folder, run, ran=summary.ran, resumed=summary.resumed, wall_s=summary.wall_s,
                    interrupted=summary.interrupted,
                    executor=ex.describe() if ex is not None else {"kind": "none (every cell resumed)"},
                    workers=list(workers_seen.values()))
            except BaseException as exc:
                if pending_error is None:
                    pending_error = exc
                else:
                    warn(f"also failed to write {RUN_META}: {exc}")
    if pending_error is not None:
        raise pending_error
    emit("finish")
    summary.per_claim_wall_s = {cid: info["seconds"] for cid, info in summary.meta.get("per_claim", {}).items()}
    return summary


# --------------------------------------------------------------------------------------------------
# 4. finalize


def finalize(folder: ResultsFolder, run: Plan, *, ran: int, resumed: int, wall_s: float, interrupted: int | None,
             executor: dict, workers: list[dict], claims: Iterable[str] | None = None,
             run_keys: set[tuple[str, str]] | None = None) -> dict:
    """Write ``_run.json`` from the records on disk, appending this sitting to the run's history (a
    previous ``_run.json`` of the same source, profile, seed and dtype policy); returns it.

    claims: the ids this sitting ran (default: the plan's selected claims); run_keys: the cells this
    sitting was to write (default: the plan's); ``complete`` says all of them are on disk and no signal
    stopped the sitting."""
    by_id = run.by_id
    selected = [c.id for c in run.selected] if claims is None else list(claims)
    run_keys = run.keys if run_keys is None else run_keys
    on_disk = [r for r in folder.scan(by_id).records if r.get("profile") == run.profile.name]
    previous = folder.previous_meta()
    same_run = all(previous.get(k) == v for k, v in (("profile", run.profile.name), ("source", run.source),
                                                     ("seed", run.seed), ("dtype", run.dtype)))
    sitting = {
        "source": run.source,
        "started": run.started,
        "finished": now(),
        "wall_s": wall_s,
        "cells_run": ran,
        "cells_resumed": resumed,
        "claims": selected,
        "shard": list(run.shard) if run.shard else None,
        "executor": executor,
        "workers": workers,
        "interrupted": interrupted is not None,
        "signal": interrupted,
    }
    sittings = [*previous.get("sittings", []), sitting] if same_run else [sitting]
    claim_ids = list(dict.fromkeys([*(previous.get("claims", []) if same_run else []), *selected]))
    order = [cid for cid in by_id if cid in claim_ids] + [c for c in claim_ids if c not in by_id]
    per_claim = per_claim_summary(on_disk, order)
    shards = sorted({tuple(x["shard"]) for x in sittings if x.get("shard")})
    meta = {
        "schema": SCHEMA,
        "source": run.source,
        "profile": run.profile.name,
        "profile_settings": run.profile.to_dict(),
        "seed": run.seed,
        "dtype": run.dtype,
        "claims": order,
        "executor": executor,
        "workers": [w for x in sittings for w in x.get("workers", [])],
        "shard": list(run.shard) if run.shard else None,
        "shards": [list(x) for x in shards],
        "started": sittings[0]["started"],
        "finished": sitting["finished"],
        "wall_s": sum(float(x.get("wall_s") or 0) for x in sittings),
        "sittings": sittings,
        "per_claim": per_claim,
        "per_claim_wall_s": {cid: info["seconds"] for cid, info in per_claim.items()},
        "cells_total": len(run.grid) + len(run.broken),
        "cells_on_disk": len(on_disk),
        "cells_run": ran,
        "cells_resumed": resumed,
        "verdicts": count_verdicts(on_disk),
        "interrupted": interrupted is not None,
        "signal": interrupted,
        "complete": interrupted is None and run_keys <= {(r["claim"], r["cell_key"]) for r in on_disk},
        **environment_info(),
    }
    folder.write_meta(meta)
    return meta
