"""One run: the grid (and ``--shard``), the results folder (lock, resume, conflicts, invalid records,
pruning of the run's own stale records), signals, progress, and ``_run.json`` describing the whole run.

The loop (:func:`run_profile`) reads as the algorithm:

1. resolve the profile, device, registry and claims; open the results folder (:class:`ResultsFolder`):
   take its lock (a second run into the same folder exits naming the holder; a lock of a dead process
   is free, since it is an ``flock``), remove temporary files of dead writers only;
2. enumerate every (claim, cell) of the profile; with ``--shard I/N`` keep the cost-balanced 1/N
   (:mod:`claims.scheduling`);
3. read what the folder holds: records of another profile, seed or commit make the run refuse (one
   line naming both and ``--fresh``); invalid files are named on stderr, never counted, and set aside
   (renamed ``*.json.invalid``) only when this run must write that cell; cells with a valid record are
   resumed; records of this profile's selected claims whose cell left the grid are pruned;
4. submit the rest, most expensive first, to the executor (:mod:`claims.executors`); the controller
   writes each record atomically as it arrives and updates the progress (cells, cells/s, an ETA
   weighted by the cost estimates);
5. on SIGINT / SIGTERM: stop scheduling, terminate the workers (a second signal kills them), keep
   every record already written; the run reports the signal (exit 130 / 143);
6. write ``_run.json`` from what is on disk (so its counts are exactly the records there), appending
   this sitting to the run's history, then build the report.

Records are written only by this controller; a write that fails (full disk) stops the run with
:class:`claims.schema.WriteError` naming the path, and that error is the one reported.
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from claims.base import Claim
from claims.cell import DTYPES, error_record, network_dtype
from claims.environment import environment_info, git_commit, now, resolve_device
from claims.executors import Executor, Task, make_executor
from claims.profiles import Profile, get_profile
from claims.registry import Registry, resolve_registry, select_claims
from claims.scheduling import assign_shards, calibrate, cell_cost, order_by_cost
from claims.schema import (
    LOCK_NAME,
    RUN_META,
    SCHEMA,
    WriteError,
    cell_key,
    count_verdicts,
    disagreements,
    json_safe,
    load_results,
    read_json,
    record_path,
    remove_stale_temps,
    write_record,
    write_run_meta,
)

__all__ = [
    "RunInterrupted",
    "FolderBusy",
    "RunConflict",
    "ProgressEvent",
    "RunSummary",
    "ResultsFolder",
    "run_profile",
    "grid_of",
    "write_meta",
    "estimated_costs",
]


class RunInterrupted(KeyboardInterrupt):
    """Raised in the main thread by SIGINT / SIGTERM during a run."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


class FolderBusy(OSError):
    """Another live process holds the results folder's lock."""


class RunConflict(ValueError):
    """The results folder holds records of another profile, seed, dtype policy or commit."""


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
    """The outcome of :func:`run_profile`."""

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
    report_path: Path | None = None
    report_error: str | None = None
    invalid: list[tuple[Path, str]] = field(default_factory=list)
    meta: dict = field(default_factory=dict)

    def verdict_counts(self) -> dict[str, int]:
        return count_verdicts(self.records)

    def disagreements(self) -> list[dict]:
        """Must-hold cells that do not hold and controls that do not fail (``--strict``)."""
        return disagreements(self.records)


# --------------------------------------------------------------------------------------------------
# the results folder


class ResultsFolder:
    """``OUT/results``: its lock, its records, its run metadata (the one place that writes them)."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out_dir = Path(out)
        self.path = self.out_dir / "results"
        self._lock_fd: int | None = None

    # lock ---------------------------------------------------------------------------------------
    def acquire(self, what: str) -> None:
        """Take the folder's lock or raise :class:`FolderBusy` naming the holder."""
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise WriteError(exc.errno, f"cannot create results folder {self.path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
            except ValueError:
                holder = {}
            os.close(fd)
            raise FolderBusy(
                f"results folder {self.path} is in use by {holder.get('what', 'another run')} "
                f"(PID {holder.get('pid', '?')} on {holder.get('host', '?')}, started {holder.get('started', '?')}); "
                f"wait for it or use another --out") from None
        info = json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now(), "what": what})
        os.ftruncate(fd, 0)
        os.pwrite(fd, info.encode(), 0)
        self._lock_fd = fd
        remove_stale_temps(self.path)

    def release(self) -> None:
        if self._lock_fd is not None:
            try:
                os.ftruncate(self._lock_fd, 0)
                fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            finally:
                os.close(self._lock_fd)
                self._lock_fd = None

    # reading ------------------------------------------------------------------------------------
    def scan(self, known_claims: Iterable[str]):
        """The folder's valid records and ``(path, reason)`` of every file that is not one."""
        return load_results(self.path, known_claims)

    def previous_meta(self) -> dict:
        try:
            meta = read_json(self.path / RUN_META)
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) and meta.get("schema") == SCHEMA else {}

    # writing ------------------------------------------------------------------------------------
    def write(self, record: dict) -> Path:
        return write_record(self.path, record)

    def set_aside(self, path: Path) -> Path:
        """Rename an invalid file out of the way of a new record (kept, never deleted)."""
        target = path.with_name(path.name + ".invalid")
        n = 1
        while target.exists():
            n += 1
            target = path.with_name(f"{path.name}.invalid-{n}")
        os.replace(path, target)
        return target

    def remove(self, path: Path) -> None:
        try:
            path.unlink()
        except FileNotFoundError:
            pass

    def write_meta(self, meta: dict) -> Path:
        return write_run_meta(self.path, meta)


# --------------------------------------------------------------------------------------------------
# the grid


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


def _conflict(record: dict, profile: Profile, seed: int, commit: str | None, claim: Claim | None,
              dtype: str) -> str | None:
    if record.get("profile") != profile.name:
        return f"profile {record.get('profile')!r}"
    if int(record.get("seed", 0) or 0) != seed:
        return f"seed {record.get('seed')}"
    theirs = record.get("git_commit")
    if commit and theirs and theirs != commit:
        return f"commit {theirs}"
    if claim is not None and record.get("dtype") != network_dtype(claim, dtype):
        return f"dtype {record.get('dtype')} for {claim.id}"
    return None


# --------------------------------------------------------------------------------------------------
# signals


class _Signals:
    """SIGINT / SIGTERM raise :class:`RunInterrupted` in the main thread; during clean-up a second
    signal kills the workers at once.

    The signal is also remembered (``received``): library code running in the main thread may catch the
    exception (a SIGINT sent while a Dask LocalCluster was starting was once lost this way), so the run
    calls :meth:`check` after the executor starts and after every cell."""

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


# --------------------------------------------------------------------------------------------------
# a run


def _warn_default(line: str) -> None:
    sys.stderr.write(f"rnnclaims: {line}\n")
    sys.stderr.flush()


def run_profile(
    profile: Profile | str,
    out: str | os.PathLike,
    *,
    device: str = "auto",
    workers: int = 1,
    claims: str | Iterable[str | Claim] | None = None,
    resume: bool = True,
    progress: Callable[[ProgressEvent], None] | None = None,
    registry: str | Registry | None = None,
    report: bool = True,
    seed: int = 0,
    dtype: str = "auto",
    shard: tuple[int, int] | None = None,
    dask_local: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    executor: Executor | None = None,
    warn: Callable[[str], None] = _warn_default,
) -> RunSummary:
    """Run every cell of the selected claims under ``profile`` into ``out`` (see the module docstring).

    out: records go to ``out/results``, the report to ``out``. workers: local processes (1: this
    process); dask_local / scheduler: a Dask LocalCluster of N processes / a scheduler address instead.
    resume False (``--fresh``): start over (records of this folder that conflict with the run, and the
    selected claims' records, are removed). seed: the run seed of every cell's draw. dtype: "auto" (each
    claim's declared precision) or "float64". shard: (I, N) for a cost-balanced 1/N of the cells.
    warn: where lines about the folder (invalid files, pruned records) go.
    """
    reg = resolve_registry(registry)  # first: a catalogue may register its own profiles
    profile = get_profile(profile)
    for name, value in (("workers", workers), ("seed", seed)):
        if isinstance(value, bool) or not isinstance(value, int) or value < (1 if name == "workers" else 0):
            raise ValueError(f"{name} must be an integer >= {1 if name == 'workers' else 0}, got {value!r}")
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dask_local is not None and (isinstance(dask_local, bool) or not isinstance(dask_local, int) or dask_local < 1):
        raise ValueError(f"dask_local must be an integer >= 1, got {dask_local!r}")
    dev = resolve_device(device)
    selected = select_claims(claims, reg)
    if not selected:
        raise ValueError(f"no claims registered in {reg.spec!r}")
    for claim in selected:
        if claim.id not in reg or reg.get(claim.id) is not claim:
            raise ValueError(f"claim {claim.id} is not in registry {reg.spec!r}; every claim must come from "
                             "the registry so that worker processes can find it")

    started, t_start = now(), time.perf_counter()
    folder = ResultsFolder(out)
    folder.acquire("rnnclaims run")
    try:
        return _run_locked(folder, profile, dev, reg, selected, resume, progress, report, seed, dtype, shard,
                           workers, dask_local, scheduler, threads, executor, warn, started, t_start)
    finally:
        folder.release()


def _run_locked(folder: ResultsFolder, profile: Profile, dev: Any, reg: Registry, selected: list[Claim],
                resume: bool, progress: Callable | None, report: bool, seed: int, dtype: str,
                shard: tuple[int, int] | None, workers: int, dask_local: int | None, scheduler: str | None,
                threads: int | None, executor: Executor | None, warn: Callable[[str], None], started: str,
                t_start: float) -> RunSummary:
    commit = git_commit()
    by_id = {c.id: c for c in reg.claims()}
    grid, broken = grid_of(selected, profile)
    full_keys = {(c.id, cell_key(cell)) for c, cell in grid} | {(c.id, "cells_error=True") for c, _ in broken}

    def rank(item: tuple[Claim, dict]) -> tuple:
        return ([c.id for c in selected].index(item[0].id), cell_key(item[1]))

    # costs: the claims' estimates, calibrated by the records already in the folder
    estimates = {(c.id, cell_key(cell)): cell_cost(c, cell, profile) for c, cell in grid}
    scan = folder.scan(by_id)
    factors = calibrate(scan.records, estimates)
    cost = {k: v * factors.get(k[0], 1.0) for k, v in estimates.items()}
    if shard is not None:
        # by the uncalibrated estimates: the same grid gives the same shards in every folder and sitting
        i, n = shard
        grid = assign_shards(grid, n, lambda item: estimates[(item[0].id, cell_key(item[1]))], rank)[i - 1]

    # what the folder holds
    for path, reason in scan.invalid:
        warn(f"could not read {path}: {reason} (not counted)")
    conflicts = []
    for record in scan.records:
        why = _conflict(record, profile, seed, commit, by_id.get(record["claim"]), dtype)
        if why:
            conflicts.append((record, why))
    if conflicts and resume:
        record, why = conflicts[0]
        raise RunConflict(
            f"results folder {folder.path} holds {len(conflicts)} record(s) of {why} (e.g. {record['claim']}/"
            f"{record['cell_key']}); this run is profile {profile.name!r}, seed {seed}, commit {commit or 'unknown'}, "
            f"dtype {dtype}: use another --out, or --fresh to delete them and start over")
    selected_ids = {c.id for c in selected}
    existing: dict[tuple[str, str], dict] = {}
    for record in scan.records:
        key = (record["claim"], record["cell_key"])
        path = record_path(folder.path, *key)
        stale = record["claim"] in selected_ids and key not in full_keys
        if not resume and (record["claim"] in selected_ids or any(r is record for r, _ in conflicts)):
            folder.remove(path)  # --fresh: the user asked to start over
        elif stale:
            folder.remove(path)
            warn(f"removed stale record {path} (cell no longer in the {profile.name} grid of {record['claim']})")
        else:
            existing[key] = record
    invalid_paths = {Path(p) for p, _ in scan.invalid}

    summary = RunSummary(out_dir=folder.out_dir, results_dir=folder.path, profile=profile.name, device=str(dev),
                         invalid=list(scan.invalid))
    tasks: list[Task] = []
    for claim, message in broken:
        record = error_record(claim, {"cells_error": True}, profile, dev, message, seed=seed,
                              dtype=network_dtype(claim, dtype))
        folder.write(record)
        summary.records.append(record)
    for claim, cell in grid:
        key = (claim.id, cell_key(cell))
        record = existing.get(key)
        if record is not None and record.get("verdict") != "error" and record.get("cell") == json_safe(cell):
            summary.records.append(record)
            summary.resumed += 1
            continue
        path = record_path(folder.path, *key)
        if path in invalid_paths and path.exists():
            moved = folder.set_aside(path)
            warn(f"set {path} aside as {moved.name}; this run writes the cell again")
        tasks.append(Task(registry=reg.spec, claim_id=claim.id, cell=cell, profile=profile, device=str(dev),
                          seed=seed, dtype=dtype, cost=cost[key], threads=threads, key=f"{claim.id}/{key[1]}"))
    summary.total = len(grid) + len(broken)
    run_keys = {(c.id, cell_key(cell)) for c, cell in grid} | {(c.id, "cells_error=True") for c, _ in broken}
    tasks = order_by_cost(tasks, lambda t: t.cost, lambda t: ([c.id for c in selected].index(t.claim_id), t.key))

    cost_total = sum(t.cost for t in tasks)
    cost_done = 0.0
    workers_seen: dict[tuple, dict] = {}

    def emit(kind: str, record: dict | None = None) -> None:
        if progress is not None:
            progress(ProgressEvent(kind=kind, done=len(summary.records), total=summary.total,
                                   resumed=summary.resumed, elapsed_s=time.perf_counter() - t_start,
                                   cost_done=cost_done, cost_total=cost_total,
                                   claim=(record or {}).get("claim"), cell_key=(record or {}).get("cell_key"),
                                   verdict=(record or {}).get("verdict")))

    ex: Executor | None = executor
    pending_error: BaseException | None = None
    with _Signals() as signals:
        try:
            emit("start")
            if tasks:
                if ex is None:
                    ex = make_executor(workers=workers, dask_local=dask_local, scheduler=scheduler, threads=threads)
                signals.check()
                for task, record in ex.results(tasks):
                    folder.write(record)
                    summary.records.append(record)
                    summary.ran += 1
                    cost_done += task.cost
                    w = record.get("worker") or {}
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
            summary.wall_s = time.perf_counter() - t_start
            try:
                summary.meta = write_meta(
                    folder, source="rnnclaims run", profile=profile, seed=seed, dtype=dtype,
                    selected=[c.id for c in selected], total=summary.total, ran=summary.ran,
                    resumed=summary.resumed, wall_s=summary.wall_s, started=started,
                    interrupted=summary.interrupted,
                    executor=ex.describe() if ex is not None else {"kind": "none (every cell resumed)"},
                    workers=list(workers_seen.values()), by_id=by_id, run_keys=run_keys, shard=shard)
            except BaseException as exc:
                if pending_error is None:
                    pending_error = exc
                else:
                    warn(f"also failed to write {RUN_META}: {exc}")
    if pending_error is not None:
        raise pending_error
    emit("finish")
    summary.per_claim_wall_s = {cid: info["seconds"] for cid, info in summary.meta.get("per_claim", {}).items()}
    if report and summary.interrupted is None:
        summary.report_path, summary.report_error = _build_report(folder, reg)
    return summary


def _kill_now(ex: Executor) -> None:
    try:
        ex.close(kill=True)
    except Exception:
        pass


def write_meta(folder: ResultsFolder, *, source: str, profile: Profile, seed: int, dtype: str,
               selected: list[str], total: int, ran: int, resumed: int, wall_s: float, started: str,
               interrupted: int | None, executor: dict, workers: list[dict], by_id: dict[str, Claim],
               run_keys: set[tuple[str, str]], shard: tuple[int, int] | None = None,
               complete: bool | None = None) -> dict:
    """Write ``_run.json`` from the records on disk (the one writer of run metadata; ``rnnclaims run``
    and ``pytest claims`` call it), appending this sitting to the run's history."""
    on_disk = [r for r in folder.scan(by_id).records if r.get("profile") == profile.name]
    previous = folder.previous_meta()
    same_run = previous.get("profile") == profile.name and previous.get("source") == source
    sitting = {
        "source": source,
        "started": started,
        "finished": now(),
        "wall_s": wall_s,
        "cells_run": ran,
        "cells_resumed": resumed,
        "claims": list(selected),
        "shard": list(shard) if shard else None,
        "executor": executor,
        "workers": workers,
        "interrupted": interrupted is not None,
        "signal": interrupted,
    }
    sittings = [*previous.get("sittings", []), sitting] if same_run else [sitting]
    claim_order = list(dict.fromkeys([*(previous.get("claims", []) if same_run else []), *selected]))
    order = [cid for cid in by_id if cid in claim_order] + [c for c in claim_order if c not in by_id]
    per_claim: dict[str, dict] = {}
    for cid in order:
        records = [r for r in on_disk if r["claim"] == cid]
        per_claim[cid] = {"cells": len(records), "seconds": sum(float(r.get("duration_s") or 0) for r in records),
                          "verdicts": count_verdicts(records)}
    shards = sorted({tuple(x["shard"]) for x in sittings if x.get("shard")})
    meta = {
        "schema": SCHEMA,
        "source": source,
        "profile": profile.name,
        "profile_settings": profile.to_dict(),
        "seed": seed,
        "dtype": dtype,
        "claims": order,
        "executor": executor,
        "workers": [w for x in sittings for w in x.get("workers", [])],
        "shard": list(shard) if shard else None,
        "shards": [list(x) for x in shards],
        "started": sittings[0]["started"],
        "finished": sitting["finished"],
        "wall_s": sum(float(x.get("wall_s") or 0) for x in sittings),
        "sittings": sittings,
        "per_claim": per_claim,
        "per_claim_wall_s": {cid: info["seconds"] for cid, info in per_claim.items()},
        "cells_total": total,
        "cells_on_disk": len(on_disk),
        "cells_run": ran,
        "cells_resumed": resumed,
        "verdicts": count_verdicts(on_disk),
        "interrupted": interrupted is not None,
        "signal": interrupted,
        # every cell of this run (this shard) has a record on disk
        "complete": (interrupted is None and run_keys <= {(r["claim"], r["cell_key"]) for r in on_disk}
                     if complete is None else complete),
        **environment_info(),
    }
    folder.write_meta(meta)
    return meta


def _build_report(folder: ResultsFolder, registry: Registry | None = None) -> tuple[Path | None, str | None]:
    try:
        from reports.build import build_report
    except ImportError as exc:
        return None, f"report not built: the reports package is not available ({exc})"
    try:
        return Path(build_report(folder.path, folder.out_dir, registry=registry)), None
    except WriteError as exc:
        return None, f"report not built: {exc}"
    except Exception as exc:
        return None, f"report not built: {type(exc).__name__}: {exc}"


def estimated_costs(selected: list[Claim], profile: Profile) -> dict[str, float]:
    """Estimated seconds per claim under ``profile`` (one core, uncalibrated), for ``rnnclaims list --cost``."""
    grid, _ = grid_of(selected, profile)
    out: dict[str, float] = {c.id: 0.0 for c in selected}
    for claim, cell in grid:
        out[claim.id] += cell_cost(claim, cell, profile)
    return out


