"""Where cells run: in this process, on a local process pool, or on Dask distributed, behind one small
protocol (:class:`Executor`). The session hands an executor its tasks, most expensive first, and gets
``(task, record)`` pairs back as they finish; the controller writes every record, so workers need no
shared filesystem.

- :class:`SerialExecutor`: this process, one cell after another.
- :class:`PoolExecutor`: a spawn-context process pool; at most 2 x workers cells are in flight, so an
  interrupt stops scheduling at once; torch threads per worker = cores // workers; workers ignore
  SIGINT (the terminal sends it to the whole group; the parent decides), die on SIGTERM, and exit on
  their own when the parent disappears (they poll their parent PID). A worker lost while running is
  replaced and its cells are run again; a cell lost twice is recorded as ``error`` with the reason.
- :class:`DaskExecutor`: ``distributed`` on a ``LocalCluster`` of N worker processes (loopback only) or
  on a running scheduler (``tls://HOST:PORT`` with certificates, :class:`claims.remote.Remote`; a plain
  ``tcp://`` address to another machine draws a one-line warning). On a running scheduler, before the
  first cell every worker's identity (versions, commit, device kind, catalogues) is compared with the
  controller's (:mod:`claims.workercheck`); a worker that joins later checks itself before its first
  cell (a LocalCluster's workers are the controller's own child processes and are not asked). A CPU
  cell whose memory estimate ``claim.memory_bytes`` exceeds ``MEMORY_FRACTION`` x every worker's
  memory limit is recorded ``skipped`` without being sent; one that fits some workers is restricted
  to those. Every cell is submitted at once with ``priority=`` its
  cost, so the scheduler starts the expensive ones first; results stream back with ``as_completed``.
  On a local cluster a cell whose worker died is retried once (``allowed-failures = 1``) and recorded
  as ``error`` when it kills a second worker; a remote scheduler applies its own setting. GPU cells
  ask for ``resources={"GPU": 1}``; on a local cluster worker i uses ``cuda:i mod count``. Dask worker
  processes exit when their parent does (distributed's parent-alive pipe).
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Protocol, Sequence

from claims.cell import error_record, evaluate_cell

__all__ = ["Task", "Executor", "SerialExecutor", "PoolExecutor", "DaskExecutor", "run_task", "make_executor",
           "fitting_workers"]

WORKER_LOST_LIMIT = 2  # a cell whose worker died this many times is recorded as ``error``


@dataclass(frozen=True)
class Task:
    """One cell to run: everything a worker needs, picklable, no paths."""

    registry: str  # registry spec (claims.registry), so that the worker finds the same claims
    claim_id: str
    cell: dict
    profile: Any  # claims.profiles.Profile
    device: str  # "cpu", "cuda", "cuda:N"
    seed: int = 0
    dtype: str = "auto"
    cost: float = 1.0  # estimated seconds (claims.scheduling)
    threads: int | None = None  # torch threads for the worker; None leaves them alone
    key: str = field(default="", compare=False)  # claim id / cell key, for messages


def _stderr_line(line: str) -> None:
    import sys

    sys.stderr.write(f"rnnclaims: {line}\n")
    sys.stderr.flush()


def _device_for_worker(device: str) -> str:
    """On a Dask local cluster, worker i of a multi-GPU machine takes GPU i mod count."""
    if device not in ("cuda", "auto"):
        return device
    try:
        from distributed import get_worker

        name = get_worker().name
    except Exception:
        return device
    try:
        import torch

        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception:
        count = 0
    if count > 1 and isinstance(name, int):
        return f"cuda:{name % count}"
    return device


def run_task(task: Task) -> dict:
    """Run one task in a worker and return its record (never raises for a claim's own errors)."""
    from claims.environment import configure_worker, resolve_device
    from claims.registry import resolve_registry

    if task.threads is not None:
        configure_worker(task.threads)
    device = resolve_device(_device_for_worker(task.device))
    configure_worker(None, str(device))
    claim = resolve_registry(task.registry).get(task.claim_id)
    record = evaluate_cell(claim, task.cell, task.profile, device=device, seed=task.seed, dtype=task.dtype)
    record["cost"] = task.cost
    return record


def run_task_on_dask(task: Task, expected: Any = None) -> dict:
    """run_task on a Dask worker, after checking that the worker runs what the controller runs
    (``expected``: :class:`claims.workercheck.Expected`; a worker that differs refuses the cell with
    ``WorkerDiffers``, or, when mixing is allowed, runs it and names the differences in the record's
    ``worker.differs``). The worker's event-loop thread uses the global ``random`` module
    (heartbeat jitter) while a cell draws its example; Hypothesis compares the global random state
    before and after each draw and reports that other thread's use as "Do not use the `random` module
    inside strategies" (a cross-thread false positive: our strategies draw only through Hypothesis).
    That one message is silenced here, on Dask workers only; the pool and serial paths keep it."""
    import warnings

    from hypothesis.errors import HypothesisDeprecationWarning

    from claims.workercheck import check_this_worker

    differs = check_this_worker(expected)
    warnings.filterwarnings("ignore", message="Do not use the `random` module inside strategies",
                            category=HypothesisDeprecationWarning)
    record = run_task(task)
    if differs:
        record["worker"] = {**record.get("worker", {}), "differs": differs}
    return record


def _lost_record(task: Task, message: str) -> dict:
    from claims.cell import network_dtype
    from claims.registry import resolve_registry

    claim = resolve_registry(task.registry).get(task.claim_id)
    return error_record(claim, task.cell, task.profile, task.device, message, seed=task.seed,
                        dtype=network_dtype(claim, task.dtype))


def _unsent_record(task: Task, message: str) -> dict:
    """A cell the controller decided not to send: verdict ``skipped`` with ``message``; no worker ran it."""
    record = _lost_record(task, message)
    record["verdict"] = "skipped"
    record["worker"] = {"host": None, "pid": None, "threads": None, "device": task.device}
    record["cost"] = task.cost
    return record


def fitting_workers(need: int, limits: dict[str, int]) -> list[str]:
    """The workers whose memory limit holds a cell of ``need`` bytes: ``need <= MEMORY_FRACTION x limit``
    (the worker-side memory guard's rule); a limit of 0 is no limit."""
    from claims.environment import MEMORY_FRACTION

    return [w for w, limit in limits.items() if not limit or need <= MEMORY_FRACTION * limit]


class Executor(Protocol):
    """Runs tasks and yields ``(task, record)`` as cells finish (any order)."""

    kind: str
    workers: int

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict]]:
        """Run ``tasks`` (given most expensive first) and yield each with its record as it finishes."""
        ...

    def close(self, *, kill: bool = False) -> None:
        """Stop now: cancel what has not started and terminate running workers (``kill``: SIGKILL)."""
        ...

    def describe(self) -> dict:
        """What this executor is, for ``_run.json``."""
        ...


class SerialExecutor:
    """Every cell in this process."""

    kind = "serial"
    workers = 1

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict]]:
        for task in tasks:
            yield task, run_task(task)

    def close(self, *, kill: bool = False) -> None:
        pass

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": 1}


# --------------------------------------------------------------------------------------------------
# local process pool


def _watch_parent(parent: int) -> None:
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(1)


def _pool_init(threads: int, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="parent-watch").start()
    from claims.environment import configure_worker

    configure_worker(threads)


class PoolExecutor:
    """A spawn-context process pool of ``workers`` processes on this machine."""

    kind = "pool"

    def __init__(self, workers: int, threads: int) -> None:
        self.workers = int(workers)
        self.threads = int(threads)
        self._executor: cf.ProcessPoolExecutor | None = None
        self._lost: dict[str, int] = {}

    def _new(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=multiprocessing.get_context("spawn"),
                                      initializer=_pool_init, initargs=(self.threads, os.getpid()))

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict]]:
        queue: deque[Task] = deque(tasks)
        suspects: deque[Task] = deque()  # cells in flight when a worker died: rerun one at a time
        running: dict[cf.Future, Task] = {}
        self._executor = self._new()
        while queue or suspects or running:
            if suspects:
                if not running:
                    task = suspects.popleft()
                    running[self._executor.submit(run_task, task)] = task
            else:
                while queue and len(running) < 2 * self.workers:
                    task = queue.popleft()
                    running[self._executor.submit(run_task, task)] = task
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in done:
                task = running.pop(fut)
                try:
                    record = fut.result()
                except cf.process.BrokenProcessPool:
                    broken = True
                    running[fut] = task  # lost with the pool, handled below
                    continue
                except Exception as exc:  # the task could not be pickled, or the worker raised
                    record = _lost_record(task, f"worker failed: {type(exc).__name__}: {exc}")
                yield task, record
            if broken:  # a worker died (e.g. killed for memory): every cell in flight is lost
                lost = list(running.values())
                running.clear()
                self._terminate(self._executor, kill=True)
                for task in lost:
                    # alone in the pool, a lost cell is the one that killed its worker
                    n = self._lost[task.key] = self._lost.get(task.key, 0) + (1 if len(lost) == 1 else 0)
                    if n >= WORKER_LOST_LIMIT:
                        yield task, _lost_record(task, f"the cell killed its worker {n} times (e.g. killed "
                                                       f"for memory); recorded as error")
                    else:
                        suspects.append(task)
                self._executor = self._new()

    def _terminate(self, executor: cf.ProcessPoolExecutor, *, kill: bool) -> None:
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for proc in processes:
            if proc.is_alive():
                (proc.kill if kill else proc.terminate)()
        deadline = time.monotonic() + 3.0
        for proc in processes:
            proc.join(timeout=max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join(timeout=1.0)

    def close(self, *, kill: bool = False) -> None:
        if self._executor is not None:
            self._terminate(self._executor, kill=kill)
            self._executor = None

    def describe(self) -> dict:
        return {"kind": self.kind, "workers": self.workers, "threads_per_worker": self.threads}


# --------------------------------------------------------------------------------------------------
# Dask distributed


class DaskExecutor:
    """``distributed``: a LocalCluster of ``local_workers`` processes, or the scheduler at ``address``
    (an address string or a :class:`claims.remote.Remote` with its TLS files and worker policy).
    warn: where the plain-tcp warning goes (default stderr)."""

    kind = "dask"

    def __init__(self, *, local_workers: int | None = None, address: Any = None,
                 threads: int | None = None, warn: Callable[[str], None] | None = None) -> None:
        if (local_workers is None) == (address is None):
            raise ValueError("DaskExecutor needs exactly one of local_workers and address")
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError as exc:  # pragma: no cover - dask is a dependency
            raise ValueError(f"the Dask executor needs dask.distributed: {exc}") from exc
        from claims.remote import Remote

        self.remote = None if address is None else address if isinstance(address, Remote) else Remote(address)
        self.address = None if self.remote is None else self.remote.address
        self.cluster = None
        self.mixed: list[str] = []  # workers that differ, when mixing is allowed
        self._limits: dict[str, int] = {}  # worker address -> memory limit in bytes (0: none)
        self._expected: Any = None  # claims.workercheck.Expected of the run, sent with every cell
        if local_workers is not None:
            self.workers = int(local_workers)
            self.threads = threads
            # allowed-failures: a cell is retried once after its worker dies; lost-worker-timeout: a
            # replacement worker that is slow to start (importing torch) is not given up on, which
            # otherwise left the cluster with no workers and the run waiting forever
            with dask.config.set({"distributed.scheduler.allowed-failures": WORKER_LOST_LIMIT - 1,
                                  "distributed.deploy.lost-worker-timeout": "1h",
                                  "distributed.admin.tick.limit": "10s"}):
                self.cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            resources=self._local_resources(), silence_logs=50)
                self.client = Client(self.cluster)
        else:
            from claims.remote import plain_tcp_risk

            risk = plain_tcp_risk(self.address)
            if risk:
                (warn or _stderr_line)(risk)
            security = self.remote.security()
            try:  # the connect timeout is Dask's (distributed.comm.timeouts.connect, 30 s by default)
                self.client = Client(self.address, security=security,
                                     timeout=dask.config.get("distributed.comm.timeouts.connect"))
            except OSError as exc:
                raise OSError(f"cannot connect to the scheduler at {self.address}: {exc}") from exc
            info = self.client.scheduler_info()
            self.workers = len(info.get("workers", {}))
            self.threads = threads
        self._futures: list = []

    @staticmethod
    def _local_resources() -> dict | None:
        try:
            import torch

            return {"GPU": 1} if torch.cuda.is_available() else None
        except Exception:
            return None

    def worker_pids(self) -> list[int]:
        """PIDs of the worker processes (for tests that kill one)."""
        return list(self.client.run(os.getpid).values())

    def _check_workers(self, tasks: Sequence[Task]) -> None:
        """Compare every worker with this controller before the first cell (claims.workercheck)."""
        from claims.workercheck import Expected, MixedWorkers, check_workers

        allow = bool(self.remote is not None and self.remote.allow_mixed_workers)
        expected = Expected.of_run(tasks[0].registry, [t.claim_id for t in tasks], tasks[0].device,
                                   allow_mixed=allow)
        lines, asked, self._expected = check_workers(self.client, expected)
        if lines and not allow:
            raise MixedWorkers(lines, asked)
        self.mixed.extend(lines)

    def _placement(self, task: Task) -> tuple[list[str] | None, str | None]:
        """(worker restriction, reason not to send) for a CPU cell, from the workers' memory limits."""
        if task.device.startswith("cuda") or not self._limits:
            return None, None  # GPU memory is checked on the worker; no worker known yet
        from claims.registry import resolve_registry

        try:
            need = int(resolve_registry(task.registry).get(task.claim_id).memory_bytes(task.cell, task.profile))
        except Exception:
            return None, None  # the worker's own guard reports the broken estimate
        fits = fitting_workers(need, self._limits)
        if not fits:
            largest = max(self._limits.values())
            from claims.environment import MEMORY_FRACTION

            return None, (f"memory guard: needs about {need / 2**30:.2f} GiB, more than {MEMORY_FRACTION:.0%} of "
                          f"every worker's memory limit (largest {largest / 2**30:.2f} GiB); not sent")
        return (sorted(fits) if len(fits) < len(self._limits) else None), None

    def results(self, tasks: Sequence[Task]) -> Iterator[tuple[Task, dict]]:
        from distributed import as_completed

        from claims.workercheck import MixedWorkers, WorkerDiffers

        if not tasks:
            return
        if self.remote is not None:  # a LocalCluster's workers are this controller's own children
            self._check_workers(tasks)
        workers = self.client.scheduler_info().get("workers", {})
        self._limits = {a: int(w.get("memory_limit") or 0) for a, w in workers.items()}
        by_future: dict[Any, Task] = {}
        where_of: dict[int, list[str] | None] = {}
        unsent: list[tuple[Task, dict]] = []
        for rank, task in enumerate(tasks):  # tasks come most expensive first: priority = their rank
            where, why = self._placement(task)
            if why is not None:
                unsent.append((task, _unsent_record(task, why)))
                continue
            where_of[id(task)] = where
            by_future[self._submit(task, priority=len(tasks) - rank, workers=where)] = task
        self._futures = list(by_future)
        yield from unsent
        suspects: list[Task] = []
        for fut in as_completed(self._futures):
            task = by_future[fut]
            try:
                record = fut.result()
            except WorkerDiffers as exc:  # a worker that joined after the check
                raise MixedWorkers([str(exc)]) from None
            except Exception as exc:
                if type(exc).__name__ == "KilledWorker":  # maybe only queued on a dying worker
                    suspects.append(task)
                    continue
                record = _lost_record(task, f"worker failed: {type(exc).__name__}: {exc}")
            self._note(record)
            yield task, record
        for task in suspects:  # alone on the cluster, a cell that kills its worker again is the culprit
            fut = self._submit(task, priority=0, workers=where_of.get(id(task)))
            self._futures = [fut]
            try:
                record = fut.result()
            except Exception as exc:
                why = ("the cell killed its worker twice, the second time alone on the cluster"
                       if type(exc).__name__ == "KilledWorker" else f"worker failed: {type(exc).__name__}: {exc}")
                record = _lost_record(task, why)
            yield task, record

    def _note(self, record: dict) -> None:
        """Keep the line of a differing worker that ran a cell (mixing allowed)."""
        line = (record.get("worker") or {}).get("differs")
        if line and line not in self.mixed:
            self.mixed.append(line)

    def _submit(self, task: Task, *, priority: int, workers: list[str] | None = None) -> Any:
        gpu = task.device.startswith("cuda")
        return self.client.submit(run_task_on_dask, task, self._expected,
                                  key=f"cell-{task.claim_id}-{abs(hash(task.key))}-{id(task)}-{priority}",
                                  pure=False, priority=priority, resources={"GPU": 1} if gpu else None,
                                  workers=workers, allow_other_workers=False)

    def close(self, *, kill: bool = False) -> None:
        try:
            if self._futures:
                self.client.cancel(self._futures, force=True)
        except Exception:
            pass
        try:
            self.client.close(timeout=5)
        except Exception:
            pass
        if self.cluster is not None:
            try:
                self.cluster.close(timeout=5)
            except Exception:
                pass
            self.cluster = None

    def describe(self) -> dict:
        out = {"kind": self.kind, "workers": self.workers}
        out["address"] = self.address or "LocalCluster (127.0.0.1)"
        if self.remote is not None and self.remote.scheme == "tls":
            out.update(self.remote.describe())
        if self.remote is not None and self.remote.allow_mixed_workers:
            out["allow_mixed_workers"] = True
        if self.mixed:
            out["mixed_workers"] = list(self.mixed)
        return out


def make_executor(*, workers: int = 1, dask_local: int | None = None, scheduler: Any = None,
                  threads: int | None = None) -> Executor:
    """The executor for the run's flags: ``scheduler`` > ``dask_local`` > ``workers`` (1: serial).
    ``scheduler``: an address, or a :class:`claims.remote.Remote` (TLS files, ``allow_mixed_workers``)."""
    from claims.environment import threads_per_worker

    if scheduler is not None:
        return DaskExecutor(address=scheduler, threads=threads)
    if dask_local is not None:
        return DaskExecutor(local_workers=dask_local, threads=threads or threads_per_worker(dask_local))
    if workers > 1:
        return PoolExecutor(workers, threads or threads_per_worker(workers))
    return SerialExecutor()
