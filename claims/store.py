"""Result records on disk: one JSON file per cell, written atomically.

Layout: ``OUT/results/<CLAIM>/<cell_key>.json`` plus run metadata ``OUT/results/_run.json``.

Every write goes to a temporary file in the target's directory (name starting with ``.tmp-``), is
flushed and fsynced, and then renamed over the target with ``os.replace`` (atomic on POSIX). A reader
therefore sees either the previous complete file or the new complete file, never a torn one; distinct
cells are distinct files, and when two writers race on the same cell the last complete write wins. A
crash mid-write leaves at most a ``.tmp-*`` file, which readers ignore and :func:`remove_stale_temps`
cleans up.

JSON is strict: NaN and +-inf become ``null``; numpy / torch scalars become Python numbers; tuples and
sets become lists.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "SCHEMA",
    "RUN_META",
    "results_dir_of",
    "record_path",
    "json_safe",
    "atomic_write_json",
    "write_record",
    "read_json",
    "read_record",
    "write_run_meta",
    "load_results",
    "LoadedResults",
    "remove_stale_temps",
]

SCHEMA = 1
RUN_META = "_run.json"
_TMP_PREFIX = ".tmp-"


def results_dir_of(path: str | os.PathLike) -> Path:
    """The results directory for ``path``: ``path/results`` when ``path`` is a run's output directory
    (it has a ``results`` subdirectory), else ``path`` itself."""
    p = Path(path)
    return p / "results" if (p / "results").is_dir() else p


def _safe_component(text: str, what: str) -> str:
    if not text or text in (".", "..") or "/" in text or "\\" in text or text.startswith("."):
        raise ValueError(f"{what} must be a plain file-name component, got {text!r}")
    return text


def record_path(results_dir: str | os.PathLike, claim_id: str, cell_key: str) -> Path:
    """Where the record of ``(claim_id, cell_key)`` lives."""
    return Path(results_dir) / _safe_component(claim_id, "claim id") / (
        _safe_component(cell_key, "cell_key") + ".json"
    )


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


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as strict JSON to ``path`` atomically (temp file in the same directory, fsync,
    ``os.replace``). Creates the directory if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(json_safe(obj), indent=1, allow_nan=False, ensure_ascii=False) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX + path.name + ".", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def write_record(results_dir: str | os.PathLike, record: dict) -> Path:
    """Store one cell's record at ``results_dir/<claim>/<cell_key>.json`` atomically; returns the path."""
    for key in ("claim", "cell_key"):
        if not isinstance(record.get(key), str):
            raise ValueError(f"record must have a string {key!r}, got {record.get(key)!r}")
    return atomic_write_json(record_path(results_dir, record["claim"], record["cell_key"]), record)


def read_json(path: str | os.PathLike) -> Any:
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def read_record(path: str | os.PathLike) -> dict | None:
    """The record at ``path``, or None when it is missing or not a valid record."""
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "claim" not in data or "cell_key" not in data:
        return None
    return data


def write_run_meta(results_dir: str | os.PathLike, meta: dict) -> Path:
    """Store the run metadata ``results_dir/_run.json`` atomically."""
    return atomic_write_json(Path(results_dir) / RUN_META, meta)


class LoadedResults(NamedTuple):
    """What :func:`load_results` found: the records (sorted by claim and cell key), the run metadata
    (``{}`` when there is no ``_run.json``), and files that were not valid records."""

    records: list[dict]
    run: dict
    invalid: list[Path]


def load_results(results_dir: str | os.PathLike) -> LoadedResults:
    """All records under ``results_dir`` (a run's ``OUT`` or ``OUT/results``) plus ``_run.json``.

    Temporary files of in-flight writes are ignored; unreadable or foreign JSON files are listed in
    ``invalid`` rather than raising. A missing directory raises ``FileNotFoundError``."""
    root = results_dir_of(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results directory {str(root)!r} does not exist")
    records: list[dict] = []
    invalid: list[Path] = []
    for claim_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(claim_dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            record = read_record(path)
            if record is None:
                invalid.append(path)
            else:
                records.append(record)
    run: dict = {}
    meta_path = root / RUN_META
    if meta_path.exists():
        try:
            loaded = read_json(meta_path)
            run = loaded if isinstance(loaded, dict) else {}
        except (OSError, ValueError):
            invalid.append(meta_path)
    records.sort(key=lambda r: (str(r.get("claim")), str(r.get("cell_key"))))
    return LoadedResults(records, run, invalid)


def remove_stale_temps(results_dir: str | os.PathLike) -> int:
    """Delete ``.tmp-*`` files left by interrupted writes; returns how many were removed."""
    root = Path(results_dir)
    if not root.is_dir():
        return 0
    removed = 0
    for path in list(root.glob(_TMP_PREFIX + "*")) + list(root.glob("*/" + _TMP_PREFIX + "*")):
        try:
            path.unlink()
            removed += 1
        except OSError:
            pass
    return removed
