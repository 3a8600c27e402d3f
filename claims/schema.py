"""The one statement of what a results folder holds: record and run-metadata types, the schema
version, the verdicts, cell keys, verdict counting, the one loader and the one atomic writer.

Torch-free (the report, the exporter and the benchmarks import it without the numerical stack).

Layout of a results folder (``OUT/results``)::

    <CLAIM>/<cell_key>.json     one record per cell (:class:`Record`)
    _run.json                   what the run was (:class:`RunMeta`)
    .lock                       held by a running session (claims.session)

A record is valid when it is a JSON object with ``schema == SCHEMA``, a claim id (known to the
registry when the reader knows the registry), a verdict in :data:`VERDICTS`, a ``cell`` whose
:func:`cell_key` is the record's ``cell_key``, and it sits at ``<claim>/<cell_key>.json``. Records of
an older schema are refused with a message (their verdicts come from the fixed-K rule of schema 1, not
the sequential test), never mixed in silently. Readers name every file they cannot use, with the
reason (:class:`LoadedResults.invalid`).

Writes go to a temporary file in the target's folder, named ``.tmp-<pid>-<name>.<random>``, which is
flushed, fsynced, given the usual file mode (0644 under the usual umask) and renamed over the target
with ``os.replace``: a reader sees the old or the new complete file, never a torn one. A failed write
raises :class:`WriteError` naming the path (full disk, read-only folder). Temporary files carry the
writer's PID so that clean-up touches only those of processes that are gone.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, NamedTuple, TypedDict

__all__ = [
    "SCHEMA",
    "VERDICTS",
    "CATALOGUE_ORDER",
    "RUN_META",
    "LOCK_NAME",
    "Record",
    "RunMeta",
    "WriteError",
    "LoadedResults",
    "cell_key",
    "params_of",
    "count_verdicts",
    "disagreements",
    "order_claims",
    "json_safe",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_bytes",
    "record_path",
    "results_dir_of",
    "write_record",
    "write_run_meta",
    "read_json",
    "validate_record",
    "read_record",
    "load_results",
    "remove_stale_temps",
]

#: version of the record format; 2 = sequential verdicts (SPRT), seeds and dtypes in every record
SCHEMA = 2

#: every verdict a cell can have, in report order
VERDICTS: tuple[str, ...] = ("holds", "fails", "inconclusive", "skipped", "error")

#: the built-in catalogue in the order of SPEC section 4; claims of other catalogues follow
CATALOGUE_ORDER: tuple[str, ...] = (
    "FWD", "BWD", "GRAD", "NTK-ID", "NTK-CONV", "NTK-PD", "NTK-PD-M", "PERT", "LAZY",
    "GEN-ADD", "GEN-KRR", "CPLX-ADD", "CPLX-NVAR", "RAND-LABEL",
)

RUN_META = "_run.json"
LOCK_NAME = ".lock"
_TMP_PREFIX = ".tmp-"


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
    """What a run was (``OUT/results/_run.json``), written by claims.session only."""

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


class WriteError(OSError):
    """A file of the results could not be written (full disk, unwritable folder); names the path."""

    def __str__(self) -> str:
        return str(self.strerror or super().__str__())


class LoadedResults(NamedTuple):
    """What :func:`load_results` found: valid records (sorted by claim order, then cell key), the run
    metadata (``{}`` when absent) and ``(path, reason)`` for every file that could not be used."""

    records: list[dict]
    run: dict
    invalid: list[tuple[Path, str]]


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


def order_claims(ids: Iterable[str], order: Iterable[str] = CATALOGUE_ORDER) -> list[str]:
    """``ids`` in ``order`` first (the run's claim list, else the catalogue's), the rest sorted."""
    ids = list(dict.fromkeys(ids))
    rank = {cid: i for i, cid in enumerate(order)}
    return sorted(ids, key=lambda c: (rank.get(c, len(rank)), c))


# --------------------------------------------------------------------------------------------------
# writing


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


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); :class:`WriteError` names the
    path when the folder is unwritable or the disk is full."""
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON (NaN -> null) to ``path`` atomically."""
    text = json.dumps(json_safe(obj), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    return atomic_write_text(path, text)


def _safe_component(text: str, what: str) -> str:
    if not isinstance(text, str) or not text or text in (".", "..") or "/" in text or "\\" in text \
            or text.startswith("."):
        raise ValueError(f"{what} must be a plain file-name component, got {text!r}")
    return text


def record_path(results_dir: str | os.PathLike, claim_id: str, key: str) -> Path:
    """Where the record of ``(claim_id, key)`` lives."""
    return Path(results_dir) / _safe_component(claim_id, "claim id") / (_safe_component(key, "cell_key") + ".json")


def write_record(results_dir: str | os.PathLike, record: dict) -> Path:
    """Store one record at ``results_dir/<claim>/<cell_key>.json`` atomically; returns the path."""
    for key in ("claim", "cell_key"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"record must have a string {key!r}, got {record.get(key)!r}")
    return atomic_write_json(record_path(results_dir, record["claim"], record["cell_key"]), record)


def write_run_meta(results_dir: str | os.PathLike, meta: dict) -> Path:
    """Store ``results_dir/_run.json`` atomically (claims.session is its only caller)."""
    return atomic_write_json(Path(results_dir) / RUN_META, meta)


# --------------------------------------------------------------------------------------------------
# reading


def results_dir_of(path: str | os.PathLike) -> Path:
    """The results folder of ``path``: ``path/results`` when ``path`` is a run's output folder (it has
    a ``results`` subfolder), else ``path`` itself."""
    p = Path(path)
    return p / "results" if (p / "results").is_dir() else p


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


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


def read_record(path: str | os.PathLike, known_claims: Iterable[str] | None = None) -> tuple[dict | None, str | None]:
    """``(record, None)`` for a valid record at ``path``, else ``(None, reason)``; a missing file is
    ``(None, "missing")``."""
    try:
        data = read_json(path)
    except FileNotFoundError:
        return None, "missing"
    except (OSError, ValueError) as exc:
        return None, f"unreadable: {type(exc).__name__}: {exc}"
    reason = validate_record(data, path, known_claims)
    return (data, None) if reason is None else (None, reason)


def load_results(path: str | os.PathLike, known_claims: Iterable[str] | None = None) -> LoadedResults:
    """All valid records under ``path`` (a run's ``OUT`` or ``OUT/results``) plus ``_run.json``.

    Temporary files are ignored; every other ``*.json`` that is not a valid record is listed in
    ``invalid`` with its reason. A missing folder raises ``FileNotFoundError`` naming it."""
    root = results_dir_of(path)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder {str(root)!r} does not exist")
    known = list(known_claims) if known_claims is not None else None
    records: list[dict] = []
    invalid: list[tuple[Path, str]] = []
    for claim_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))):
        for file in sorted(claim_dir.glob("*.json")):
            if file.name.startswith("."):
                continue
            record, reason = read_record(file, known)
            if record is None:
                invalid.append((file, reason or "invalid"))
            else:
                records.append(record)
    run: dict = {}
    meta_path = root / RUN_META
    if meta_path.exists():
        try:
            loaded = read_json(meta_path)
        except (OSError, ValueError) as exc:
            invalid.append((meta_path, f"unreadable: {type(exc).__name__}: {exc}"))
        else:
            if isinstance(loaded, dict) and loaded.get("schema") == SCHEMA:
                run = loaded
            else:
                schema = loaded.get("schema") if isinstance(loaded, dict) else None
                invalid.append((meta_path, f"run metadata of schema {schema!r}, not {SCHEMA}"))
    order = run.get("claims") or CATALOGUE_ORDER
    rank = {cid: i for i, cid in enumerate(order_claims({r["claim"] for r in records}, order))}
    records.sort(key=lambda r: (rank[r["claim"]], r["cell_key"]))
    return LoadedResults(records, run, invalid)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temps(results_dir: str | os.PathLike) -> int:
    """Delete temporary files left by writers that are no longer running (their PID is in the name);
    files of live processes are left alone. Returns how many were removed."""
    root = Path(results_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for path in list(root.glob(_TMP_PREFIX + "*")) + list(root.glob("*/" + _TMP_PREFIX + "*")):
        pid_text = path.name[len(_TMP_PREFIX):].split("-", 1)[0]
        if not pid_text.isdigit() or _pid_alive(int(pid_text)):
            continue
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
