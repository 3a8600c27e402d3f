"""The engine's facade: run one cell (:func:`run_cell`), a whole profile (:func:`run_profile`), one
example (:func:`reproduce`). The work is split by role, the way pytest-xdist splits its session:

- :mod:`claims.lifecycle`    one run: plan (grid, shards), reconcile the folder, execute, finalize
- :mod:`claims.session`      ``rnnclaims run``'s front end of it (arguments, lock, executor choice)
- :mod:`claims.store`        the results folder: loading, atomic writes, ``_run.json``
- :mod:`claims.executors`    serial, local process pool, Dask distributed
- :mod:`claims.cell`         one cell: draw, evaluate, sequential verdict, shrink, the record
- :mod:`claims.sampling`     hypothesis: drawing and shrinking recipes
- :mod:`claims.scheduling`   cost model, submission order, shards
- :mod:`claims.environment`  device, memory, versions, threads
- :mod:`claims.reproduce`    one example, with the size guards
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from claims.base import Claim
from claims.cell import evaluate_cell
from claims.environment import (
    MEMORY_FRACTION,
    available_memory,
    environment_info,
    resolve_device,
)
from claims.profiles import Profile, get_profile
from claims.reproduce import reproduce
from claims.sampling import cell_seed, draw_recipes
from claims import session
from claims.session import ProgressEvent, RunInterrupted, RunSummary
from claims.store import WriteError, write_record

__all__ = [
    "MEMORY_FRACTION",
    "RunInterrupted",
    "ProgressEvent",
    "RunSummary",
    "resolve_device",
    "available_memory",
    "cell_seed",
    "draw_recipes",
    "environment_info",
    "run_cell",
    "run_profile",
    "build_report",
    "reproduce",
]


def run_cell(claim: Claim, cell: dict, profile: Profile | str, *, device: Any = "auto",
             out_dir: str | os.PathLike | None = None, seed: int = 0, dtype: str = "auto") -> dict:
    """Run one cell of ``claim`` and return its record (:func:`claims.cell.evaluate_cell`).

    Bad arguments (unknown profile or device, a cell that is not a dict) raise ``ValueError``. When
    ``out_dir`` is given the record is also written to ``out_dir/results/<CLAIM>/<cell_key>.json``."""
    profile = get_profile(profile)
    if not isinstance(cell, dict):
        raise ValueError(f"cell must be a dict of parameters, got {type(cell).__name__}")
    record = evaluate_cell(claim, cell, profile, device=resolve_device(device), seed=seed, dtype=dtype)
    if out_dir is not None:
        write_record(os.path.join(os.fspath(out_dir), "results"), record)
    return record


def run_profile(profile: Profile | str, out: str | os.PathLike, *, report: bool = True, **kw: Any) -> RunSummary:
    """Run a profile (:func:`claims.session.run_profile`, same keywords), then, when ``report`` and the
    run was not interrupted, build the HTML report into ``out`` (:func:`build_report`)."""
    summary = session.run_profile(profile, out, **kw)
    if report and summary.interrupted is None:
        summary.report_path, summary.report_error = build_report(summary.out_dir, kw.get("registry"))
    return summary


def build_report(out: str | os.PathLike, registry: Any = None) -> tuple[Path | None, str | None]:
    """The report of the results in ``out/results``, written to ``out``: ``(path, None)``, or
    ``(None, why)`` when it could not be built (the reports package missing, a failed write)."""
    try:
        from reports.build import build_report as build
    except ImportError as exc:
        return None, f"report not built: the reports package is not available ({exc})"
    try:
        return Path(build(Path(out) / "results", out, registry=registry)), None
    except WriteError as exc:
        return None, f"report not built: {exc}"
    except Exception as exc:
        return None, f"report not built: {type(exc).__name__}: {exc}"

