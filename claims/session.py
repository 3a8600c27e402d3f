"""``rnnclaims run`` (and :func:`claims.runner.run_profile`): one run of a profile's cells on an
executor, through the run lifecycle of :mod:`claims.lifecycle` (plan -> reconcile the folder ->
execute -> finalize ``_run.json``).

What this front end adds: it validates the arguments, resolves the device and the registry, takes the
results folder's lock (a second run into the same folder exits naming the holder; a lock of a dead
process is free, since it is an ``flock``), and builds the executor (serial, a local process pool, or
Dask; :mod:`claims.executors`). A signal ends the run with every finished record kept (exit 130 /
143 in the CLI); a write that fails (full disk) stops the run with :class:`claims.store.WriteError`
naming the path, and that error is the one reported. The report is the front ends' business
(:mod:`claims.runner`, :mod:`claims.cli`).
"""

from __future__ import annotations

import os
from typing import Callable, Iterable

from claims.base import Claim
from claims.cell import DTYPES
from claims.environment import resolve_device
from claims.executors import Executor, make_executor
from claims.lifecycle import (
    ProgressEvent,
    RunConflict,
    RunInterrupted,
    RunSummary,
    execute,
    grid_of,
    plan,
    reconcile,
    warn_stderr,
)
from claims.profiles import Profile, get_profile
from claims.registry import Registry, resolve_registry, select_claims
from claims.scheduling import cell_cost, order_by_cost  # noqa: F401  (order_by_cost: what a run hands over)
from claims.store import FolderBusy, ResultsFolder

__all__ = [
    "RunInterrupted",
    "FolderBusy",
    "RunConflict",
    "ProgressEvent",
    "RunSummary",
    "ResultsFolder",
    "run_profile",
    "grid_of",
    "estimated_costs",
]

SOURCE = "rnnclaims run"


def _check_int(name: str, value: object, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")


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
    report: bool = False,
    seed: int = 0,
    dtype: str = "auto",
    shard: tuple[int, int] | None = None,
    dask_local: int | None = None,
    scheduler: str | None = None,
    threads: int | None = None,
    executor: Executor | None = None,
    warn: Callable[[str], None] = warn_stderr,
) -> RunSummary:
    """Run every cell of the selected claims under ``profile`` into ``out/results`` (module docstring).

    workers: local processes (1: this process); dask_local / scheduler: a Dask LocalCluster of N
    processes / a scheduler address instead. resume False (``--fresh``): start over (records of this
    folder that conflict with the run, and the selected claims' records, are removed). seed: the run
    seed of every cell's draw. dtype: "auto" (each claim's declared precision) or "float64". shard:
    (I, N) for a cost-balanced 1/N of the cells. warn: where lines about the folder (invalid files,
    pruned records) go. report: must be False here: the report is built by the front ends
    (:func:`claims.runner.run_profile`, the CLI), which take the same keywords.
    """
    if report:
        raise ValueError("claims.session.run_profile builds no report; use claims.runner.run_profile(..., "
                         "report=True) or `rnnclaims report`")
    reg = resolve_registry(registry)  # first: a catalogue may register its own profiles
    profile = get_profile(profile)
    _check_int("workers", workers, 1)
    _check_int("seed", seed, 0)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    if dask_local is not None:
        _check_int("dask_local", dask_local, 1)
    dev = resolve_device(device)
    selected = select_claims(claims, reg)
    if not selected:
        raise ValueError(f"no claims registered in {reg.spec!r}")
    for claim in selected:
        if claim.id not in reg or reg.get(claim.id) is not claim:
            raise ValueError(f"claim {claim.id} is not in registry {reg.spec!r}; every claim must come from "
                             "the registry so that worker processes can find it")

    run = plan(SOURCE, reg, selected, profile, seed=seed, dtype=dtype, shard=shard)
    with ResultsFolder(out) as folder:
        folder.acquire(SOURCE)
        found = reconcile(folder, run, fresh=not resume, warn=warn)
        return execute(folder, run, found, device=dev, executor=executor, threads=threads, progress=progress,
                       warn=warn, make_executor=lambda: make_executor(workers=workers, dask_local=dask_local,
                                                                      scheduler=scheduler, threads=threads))


def estimated_costs(selected: list[Claim], profile: Profile) -> dict[str, float]:
    """Estimated seconds per claim under ``profile`` (one core, uncalibrated), for ``rnnclaims list --cost``."""
    grid, _ = grid_of(selected, profile)
    out: dict[str, float] = {c.id: 0.0 for c in selected}
    for claim, cell in grid:
        out[claim.id] += cell_cost(claim, cell, profile)
    return out
