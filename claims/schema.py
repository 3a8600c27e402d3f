"""What a results folder holds: the record and run-metadata types, the schema version, the verdicts,
cell keys, verdict counting, strict-JSON coercion and the validation of a record. Torch-free, and no
I/O: the results folder (reading, atomic writing, ``_run.json``) is :mod:`claims.store`.

A record is valid when it is a JSON object with ``schema == SCHEMA``, a claim id (known to the
registry when the reader knows the registry), a verdict in :data:`VERDICTS`, a ``cell`` whose
:func:`cell_key` is the record's ``cell_key``, and it sits at ``<claim>/<cell_key>.json``. Records of
an older schema are refused with a message (their verdicts come from the fixed-K rule of schema 1, not
the sequential test), never mixed in silently. Fields beyond these (a cell kind's own results) are
allowed and kept.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, TypedDict

__all__ = [
    "SCHEMA",
    "VERDICTS",
    "Record",
    "RunMeta",
    "cell_key",
    "params_of",
    "count_verdicts",
    "disagreements",
    "order_claims",
    "identity_of",
    "json_safe",
    "validate_record",
]

#: version of the record format; 2 = sequential verdicts (SPRT), seeds and dtypes in every record
SCHEMA = 2

#: every verdict a cell can have, in report order
VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive", "skipped", "error")

class Record(TypedDict, total=False):
    """One cell's result (``OUT/results/<claim>/<cell_key>.json``)."""

    schema: int
    claim: str
    title: str
    cell_key: str
    cell: dict  # the cell as the claim defined it (control cells carry "control": True)
    params: dict  # the cell without "control"
    control: bool
    expect: str | None  # "holds" (asserted), "fails" (a control), None (a finding)
    must_hold: bool  # expect == "holds"
    not_asserted: str | None  # the SPEC expects "holds" here but the suite does not assert it: why
    verdict: str  # one of VERDICTS
    reason: str  # why the test stopped (H0 / H1 accepted, budget, futility, memory guard, the error)
    test: dict  # the sequential test: {"test": "SPRT", delta, delta_1, alpha, beta, budget, futility, llr}
    examples: int  # examples evaluated (the test stops early)
    failures: int
    inconclusive: int
    failure_rate_ci: list  # one-sided (1 - alpha) Clopper-Pearson bounds [lo, hi] on p
    inconclusive_rate: float | None  # inconclusive / examples (None without examples)
    inconclusive_rate_ci: list  # its two-sided 95% Clopper-Pearson interval [lo, hi]
    margin: float | None  # worst (largest) margin over the examples; <= 1 passes
    margins: list
    example_ok: list
    measured: dict  # per key: {"mean", "min", "max", "n"} or {"values": [...]}
    declared_constants: dict
    measured_constants: dict
    series: list  # tidy rows, each with "example": i
    recipes: list  # the recipes evaluated, in order
    failing_recipe: dict | None
    failing_outcome: dict | None
    failing_example: int | None
    shrunk: bool  # failing_recipe is strictly simpler than the first failing recipe (see sampling)
    shrink_evaluations: int
    error_recipe: dict | None
    seed: int  # the run seed (--seed) the cell's draw was derived from
    seeds: dict  # {"draw_seed": ..., "examples": [per-recipe seeds]}
    dtype: str  # dtype of the networks ("float64" or "float32")
    profile: str
    device: str
    worker: dict  # where the cell ran: host, pid, threads, device
    versions: dict
    git_commit: str | None
    started: str
    duration_s: float
    cost: float  # the cost model's estimate (seconds) when the cell was scheduled
    message: str
    traceback: str


class RunMeta(TypedDict, total=False):
    """What a run was (``OUT/results/_run.json``), written by claims.store.write_run_meta only."""

    schema: int
    source: str  # "rnnclaims run" | "pytest claims" | "rnnclaims merge"
    profile: str
    profile_settings: dict
    seed: int
    dtype: str  # "auto" (claims choose) or "float64" (forced)
    claims: list  # ids in report order
    executor: dict  # {"kind": "serial" | "pool" | "dask", "workers": N, "address": ...}
    workers: list  # one entry per worker that returned a record: host, pid, device, threads
    shard: list | None  # [i, n] for one shard of a run
    shards: list  # after a merge: one entry per shard (its RunMeta summary)
    started: str
    finished: str
    wall_s: float
    per_claim: dict  # id -> {"cells", "seconds", "verdicts"}
    cells_total: int
    cells_run: int
    cells_resumed: int
    verdicts: dict
    interrupted: bool
    signal: int | None
    complete: bool
    versions: dict
    git_commit: str | None


# --------------------------------------------------------------------------------------------------
# keys and counts


def cell_key(params: dict) -> str:
    """A stable, file-name-safe key for a cell: sorted ``name=value`` pairs joined by ``__``."""
    parts = []
    for name in sorted(params):
        value = params[name]
        if isinstance(value, float):
            value = f"{value:g}"
        elif isinstance(value, (list, tuple)):
            value = "-".join(str(v) for v in value)
        text = f"{name}={value}"
        parts.append("".join(ch if ch.isalnum() or ch in "=.-_" else "_" for ch in text))
    return "__".join(parts) or "default"


def params_of(cell: dict) -> dict:
    """The cell's parameters without the ``control`` flag."""
    return {k: v for k, v in cell.items() if k != "control"}


def count_verdicts(records: Iterable[dict]) -> dict[str, int]:
    """Cells per verdict, every verdict present (0 when none)."""
    counts = Counter(r.get("verdict") for r in records)
    return {v: int(counts.get(v, 0)) for v in VERDICTS}


def disagreements(records: Iterable[dict]) -> list[dict]:
    """Records whose verdict is not what the suite asserts: a must-hold cell that does not hold, a
    control that does not fail (``--strict`` and ``pytest claims`` fail on these). Skipped cells are
    not disagreements (the memory guard or the profile ruled them out and says so)."""
    return [r for r in records
            if r.get("expect") in ("holds", "fails") and r.get("verdict") not in (r.get("expect"), "skipped")]


def identity_of(record: dict) -> dict:
    """What makes records evidence about one run: profile, seed, commit and network dtype. A run
    refuses a folder (claims.lifecycle), and a merge refuses folders (claims.merge), whose records
    differ in one of these, unless the user asks otherwise."""
    return {"profile": record.get("profile"), "seed": int(record.get("seed", 0) or 0),
            "commit": record.get("git_commit"), "dtype": record.get("dtype")}


def order_claims(ids: Iterable[str], order: Iterable[str] = ()) -> list[str]:
    """``ids`` in ``order`` first (the run's claim list, or a registry's order), the rest sorted."""
    ids = list(dict.fromkeys(ids))
    rank = {cid: i for i, cid in enumerate(order)}
    return sorted(ids, key=lambda c: (rank.get(c, len(rank)), c))


# --------------------------------------------------------------------------------------------------
# JSON


def json_safe(obj: Any) -> Any:
    """A strict-JSON-safe copy of ``obj`` (NaN/inf -> None, numpy/torch scalars -> Python numbers)."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return float(obj) if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return [json_safe(v) for v in items]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if hasattr(obj, "to_dict"):
        return json_safe(obj.to_dict())
    # numpy scalars, 0-d numpy arrays and 0-d torch tensors all have ndim == 0 and .item()
    if getattr(obj, "ndim", None) == 0 and hasattr(obj, "item"):
        return json_safe(obj.item())
    if hasattr(obj, "tolist"):
        return json_safe(obj.tolist())
    raise TypeError(f"cannot store a {type(obj).__name__} in a JSON record: {obj!r}"[:200])


# --------------------------------------------------------------------------------------------------
# validation


def validate_record(data: Any, path: str | os.PathLike | None = None,
                    known_claims: Iterable[str] | None = None) -> str | None:
    """Why ``data`` (read from ``path``) is not a usable record, or None when it is."""
    if not isinstance(data, dict):
        return f"not a JSON object ({type(data).__name__})"
    schema = data.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, int) and schema < SCHEMA:
            return (f"schema {schema} (written by an older rnn-claims, whose verdicts came from another "
                    f"rule); this version reads schema {SCHEMA}: rerun the cell")
        return f"schema {schema!r} is not {SCHEMA}, the schema this version reads"
    claim = data.get("claim")
    if not isinstance(claim, str) or not claim:
        return "no claim id"
    known = None if known_claims is None else {c.upper() for c in known_claims}
    if known is not None and claim.upper() not in known:
        return f"unknown claim id {claim!r} (not in the registry)"
    verdict = data.get("verdict")
    if verdict not in VERDICTS:
        return f"verdict {verdict!r} is not one of {', '.join(VERDICTS)}"
    cell = data.get("cell")
    if not isinstance(cell, dict):
        return "no cell object"
    key = data.get("cell_key")
    if key != cell_key(cell):
        return f"cell_key {key!r} does not match its cell (expected {cell_key(cell)!r})"
    if data.get("params") != params_of(cell):
        return "params do not match the cell"
    if bool(data.get("control", False)) != bool(cell.get("control", False)):
        return "control flag does not match the cell"
    for name in ("examples", "failures"):
        value = data.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            return f"{name} must be a non-negative integer, got {value!r}"
    if not isinstance(data.get("profile"), str):
        return "no profile"
    if data.get("expect") not in ("holds", "fails", None):
        return f"expect {data.get('expect')!r} is not 'holds', 'fails' or null"
    if path is not None:
        p = Path(path)
        if p.parent.name != claim or p.stem != key:
            return f"stored at {p.parent.name}/{p.name}, but it is the record of {claim}/{key}.json"
    return None


_STORE_NAMES = frozenset({
    "RUN_META", "LOCK_NAME", "WriteError", "LoadedResults", "atomic_write_json", "atomic_write_text",
    "atomic_write_bytes", "record_path", "results_dir_of", "write_record", "write_run_meta", "read_json",
    "read_record", "load_results", "remove_stale_temps",
})


def __getattr__(name: str) -> Any:
    """The results-folder names, for code that imports them from here: they live in claims.store."""
    if name in _STORE_NAMES:
        from claims import store

        return getattr(store, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
