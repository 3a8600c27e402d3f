"""The engine's facade: run one cell (:func:`run_cell`), a whole profile (:func:`run_profile`), one
example (:func:`reproduce`). The work is split by role, the way pytest-xdist splits its session:

- :mod:`claims.session`      one run: grid, shards, results folder, resume, signals, ``_run.json``
- :mod:`claims.executors`    serial, local process pool, Dask distributed
- :mod:`claims.cell`         one cell: draw, evaluate, sequential verdict, shrink, the record
- :mod:`claims.sampling`     hypothesis: drawing and shrinking recipes
- :mod:`claims.scheduling`   cost model, submission order, shards
- :mod:`claims.environment`  device, memory, versions, threads
- :mod:`claims.reproduce`    one example, with the size guards
"""

from __future__ import annotations

import os
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
from claims.session import ProgressEvent, RunInterrupted, RunSummary, run_profile
from claims.schema import write_record

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
