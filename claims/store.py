"""The results folder: the one loader (it names every file it cannot use), the one atomic writer, the
folder's lock, and the one writer of ``_run.json``. Torch-free.

Layout of a results folder (``OUT/results``)::

    <CLAIM>/<cell_key>.json     one record per cell (:class:`claims.schema.Record`)
    _run.json                   what the run was (:class:`claims.schema.RunMeta`)
    .lock                       held by the process writing the folder (:class:`ResultsFolder`)

Writes go to a temporary file in the target's folder, named ``.tmp-<pid>-<name>.<random>``, which is
flushed, fsynced, given the usual file mode (0644 under the usual umask) and renamed over the target
with ``os.replace``: a reader sees the old or the new complete file, never a torn one. A failed write
raises :class:`WriteError` naming the path (full disk, read-only folder). Temporary files carry the
writer's PID so that clean-up touches only those of processes that are gone.

Readers validate every record (:func:`claims.schema.validate_record`) and list each file they cannot
use with the reason (:attr:`LoadedResults.invalid`); nothing unusable is counted.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import tempfile
from pathlib import Path
from typing import Any, Iterable, NamedTuple

from claims.environment import now
from claims.schema import SCHEMA, count_verdicts, json_safe, order_claims, validate_record

__all__ = [
    "RUN_META",
    "LOCK_NAME",
    "WriteError",
    "FolderBusy",
    "LoadedResults",
    "ResultsFolder",
    "atomic_write_json",
    "atomic_write_text",
    "atomic_write_bytes",
    "record_path",
    "results_dir_of",
    "write_record",
    "write_run_meta",
    "read_json",
    "read_record",
    "load_results",
    "remove_stale_temps",
    "per_claim_summary",
]

RUN_META = "_run.json"
LOCK_NAME = ".lock"
_TMP_PREFIX = ".tmp-"


class WriteError(OSError):
    """A file of the results could not be written (full disk, unwritable folder); names the path."""

    def __str__(self) -> str:
        return str(self.strerror or super().__str__())


class FolderBusy(OSError):
    """Another live process holds the results folder's lock."""


class LoadedResults(NamedTuple):
    """What :func:`load_results` found: valid records (sorted by claim order, then cell key), the run
    metadata (``{}`` when absent) and ``(path, reason)`` for every file that could not be used."""

    records: list[dict]
    run: dict
    invalid: list[tuple[Path, str]]


# --------------------------------------------------------------------------------------------------
# writing


def _file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring); :class:`WriteError` names the
    path when the folder is unwritable or the disk is full."""
    return _write(path, data, exclusive=False)


def _write(path: str | os.PathLike, data: bytes, *, exclusive: bool) -> Path:
    """The temporary file, then ``os.replace``; with ``exclusive`` ``os.link``, which raises
    ``FileExistsError`` when ``path`` exists (two writers claiming one name)."""
    path = Path(path)
    tmp = None
    taken = False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-{path.name}.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        if exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                taken = True
                raise
        else:
            os.replace(tmp, path)
            tmp = None
    except OSError as exc:
        if taken:
            raise
        raise WriteError(exc.errno, f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return path


def atomic_write_text(path: str | os.PathLike, text: str, *, exclusive: bool = False) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically; ``exclusive``: only if ``path`` does not exist
    (else ``FileExistsError``)."""
    data = text.encode("utf-8")
    return _write(path, data, exclusive=True) if exclusive else atomic_write_bytes(path, data)


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
    """Store ``results_dir/_run.json`` atomically: the one writer of run metadata (its content comes
    from :func:`claims.lifecycle.finalize` for a run or a pytest session, from :mod:`claims.merge` for
    a merge)."""
    return atomic_write_json(Path(results_dir) / RUN_META, meta)


def per_claim_summary(records: Iterable[dict], order: Iterable[str]) -> dict[str, dict]:
    """Per claim id of ``order``: ``{"cells", "seconds" (the records' durations), "verdicts"}``."""
    records = list(records)
    out: dict[str, dict] = {}
    for cid in order:
        mine = [r for r in records if r["claim"] == cid]
        out[cid] = {"cells": len(mine), "seconds": sum(float(r.get("duration_s") or 0) for r in mine),
                    "verdicts": count_verdicts(mine)}
    return out


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

    Records are ordered by the run's claim list, else by ``known_claims`` (a registry's order), then by
    cell key. Temporary files are ignored; every other ``*.json`` that is not a valid record is listed
    in ``invalid`` with its reason. A missing folder raises ``FileNotFoundError`` naming it."""
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
    order = run.get("claims") or known or ()
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


# --------------------------------------------------------------------------------------------------
# the folder a run writes


class ResultsFolder:
    """``OUT/results`` as one writer holds it: its lock, its records, its run metadata."""

    def __init__(self, out: str | os.PathLike) -> None:
        self.out_dir = Path(out)
        self.path = self.out_dir / "results"
        self._lock_fd: int | None = None

    def acquire(self, what: str) -> None:
        """Take the folder's lock (an ``flock``: a dead holder's lock is free) or raise
        :class:`FolderBusy` naming the holder; then remove temporary files of dead writers."""
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

    def __enter__(self) -> "ResultsFolder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def scan(self, known_claims: Iterable[str] | None = None) -> LoadedResults:
        """The folder's valid records and ``(path, reason)`` of every file that is not one."""
        return load_results(self.path, known_claims)

    def previous_meta(self) -> dict:
        """The folder's ``_run.json`` when it is of this schema, else ``{}``."""
        try:
            meta = read_json(self.path / RUN_META)
        except (OSError, ValueError):
            return {}
        return meta if isinstance(meta, dict) and meta.get("schema") == SCHEMA else {}

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
