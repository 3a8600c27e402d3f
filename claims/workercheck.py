"""One code base per run: every Dask worker that computes a cell runs what the controller runs.

A process's *identity for a run* is the tuple

    (rnn-claims version, git commit, torch version, device kind, catalogues, claims)

where the git commit carries ``+dirty`` for a modified checkout, the device kind is ``cpu`` or the CUDA
device model that the run's device (``--device``) names there, the catalogues are the run's registry
spec expanded into its parts with each part's installed distribution and version, and ``claims`` says
whether that spec resolves there to a registry holding every claim id the run needs.

Before the first cell the controller asks every worker for its identity (:func:`check_workers`) and
compares it field by field with its own; each worker that differs gives one line naming the fields,
its value and the controller's. Workers that join later are checked by the cell itself: before a cell
runs, the worker compares its identity with the controller's, sent with the cell
(:func:`check_this_worker`), and refuses the cell with :class:`WorkerDiffers`. Without
``--allow-mixed-workers`` either finding stops the run (:class:`MixedWorkers`); with it the cells run
and the lines are kept in ``_run.json``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import metadata
from typing import Any, Sequence

__all__ = ["FIELDS", "Expected", "identity", "differences", "device_kind", "check_workers",
           "check_this_worker", "MixedWorkers", "WorkerDiffers"]

FIELDS: tuple[str, ...] = ("rnn-claims", "git commit", "torch", "device", "catalogues", "claims")


class MixedWorkers(ValueError):
    """Workers differ from the controller; ``lines``: one per worker, naming what differs."""

    def __init__(self, lines: Sequence[str], total: int | None = None) -> None:
        self.lines = list(lines)
        n = len(self.lines)
        head = (f"{n} of {total} workers differ from this controller" if total is not None
                else f"{n} worker(s) that joined during the run differ from this controller")
        self.headline = f"{head}; the run is stopped (--allow-mixed-workers runs anyway)"
        super().__init__("\n".join([self.headline, *self.lines]))


class WorkerDiffers(RuntimeError):
    """Raised on a worker that refuses a cell because it differs from the controller (one line)."""


def device_kind(device: str) -> str:
    """``cpu``, or ``cuda (MODEL)`` of the CUDA device that ``device`` names in this process."""
    if not str(device).startswith("cuda"):
        return "cpu"
    try:
        import torch

        if not torch.cuda.is_available():
            return "no CUDA device"
        index = torch.device(device).index or 0
        return f"cuda ({torch.cuda.get_device_name(index)})"
    except Exception as exc:  # a broken driver is a difference too
        return f"cuda unusable ({type(exc).__name__})"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _catalogues(spec: str) -> str:
    from claims.registry import BUILTIN_SPEC, DEFAULT_SPEC, entry_point_specs

    parts: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        for x in ([BUILTIN_SPEC, *entry_point_specs()] if part == DEFAULT_SPEC else [part] if part else []):
            if x not in parts:
                parts.append(x)
    owners = _distributions()
    out = []
    for part in parts:
        top = part.split(":")[0].split(".")[0]
        dists = owners.get(top) or []
        if dists:
            try:
                out.append(f"{part} ({dists[0]} {metadata.version(dists[0])})")
                continue
            except metadata.PackageNotFoundError:
                pass
        out.append(f"{part} (source)")
    return ", ".join(out)


def _claims(spec: str, claim_ids: tuple[str, ...]) -> str:
    from claims.registry import resolve_registry

    try:
        registry = resolve_registry(spec)
    except Exception as exc:
        return f"registry {spec!r} does not load ({type(exc).__name__}: {exc})"
    missing = [cid for cid in claim_ids if cid not in registry]
    return f"missing {', '.join(missing)}" if missing else f"all {len(claim_ids)} present"


def identity(registry: str, claim_ids: tuple[str, ...], device: str) -> dict[str, str]:
    """This process's identity for a run of ``claim_ids`` from ``registry`` on ``device`` (see the module
    docstring). The commit is read from the checkout now, not from a process-wide cache, so that a
    controller and a worker sharing one checkout agree even when it moved since either started."""
    from claims.environment import environment_info, git_commit

    versions = environment_info()["versions"]
    commit = git_commit.__wrapped__()
    return {
        "rnn-claims": str(versions.get("rnn_claims")),
        "git commit": str(commit or "none (installed copy)"),
        "torch": str(versions.get("torch")),
        "device": device_kind(device),
        "catalogues": _catalogues(registry),
        "claims": _claims(registry, tuple(claim_ids)),
    }


def differences(theirs: dict, ours: dict) -> list[str]:
    """``"FIELD THEIRS (controller: OURS)"`` for every field that differs."""
    out = []
    for name in FIELDS:
        if theirs.get(name) != ours.get(name):
            out.append(f"{name} {theirs.get(name, 'not reported')} (controller: {ours.get(name)})")
    return out


@dataclass(frozen=True)
class Expected:
    """What a worker must match before it runs a cell: the controller's identity for the run, and
    whether a difference only gets noted (``allow_mixed``) instead of refusing the cell."""

    registry: str
    claim_ids: tuple[str, ...]
    device: str
    ours: tuple[tuple[str, str], ...]
    allow_mixed: bool = False

    @classmethod
    def of_run(cls, registry: str, claim_ids: Sequence[str], device: str, *, allow_mixed: bool) -> "Expected":
        ids = tuple(sorted(set(claim_ids)))
        return cls(registry, ids, device, tuple(identity(registry, ids, device).items()), allow_mixed)

    def differences(self) -> list[str]:
        """How this process differs from the controller."""
        return differences(identity(self.registry, self.claim_ids, self.device), dict(self.ours))


def _where() -> str:
    try:
        from distributed import get_worker

        return get_worker().address
    except Exception:
        import socket

        return socket.gethostname()


_CHECKED: dict[Expected, list[str]] = {}  # on a worker: its differences, once per run (per Expected)


def _report(expected: Expected) -> Any:
    """On a worker: its differences from the controller (an empty list when it matches), kept as the
    answer for the run's cells too: a worker is checked once per run."""
    diffs = _CHECKED[expected] = expected.differences()
    return diffs


def check_this_worker(expected: Expected | None) -> str | None:
    """On a worker, before a cell: the line naming this worker and how it differs from the controller
    (None when it matches), from the check at the start of the run or, for a worker that joined later,
    computed now. Raises :class:`WorkerDiffers` with that line when mixing is not allowed."""
    if expected is None:
        return None
    diffs = _CHECKED.get(expected)
    if diffs is None:
        diffs = _CHECKED[expected] = expected.differences()
    if not diffs:
        return None
    line = f"worker {_where()}: " + "; ".join(diffs)
    if not expected.allow_mixed:
        raise WorkerDiffers(line)
    return line


def check_workers(client: Any, expected: Expected) -> tuple[list[str], int, Expected]:
    """Ask every worker of ``client``'s cluster for its differences from the controller: one line per
    worker that differs (or cannot answer), the number of workers asked, and the controller identity
    they were compared with (read again, and the workers asked again, when this controller's checkout
    moved while they answered)."""
    for attempt in range(2):
        answers = client.run(_report, expected, on_error="return")
        lines = []
        for address, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                lines.append(f"worker {address}: cannot report its rnn-claims identity "
                             f"({type(answer).__name__}: {answer})")
            elif answer:
                lines.append(f"worker {address}: " + "; ".join(answer))
        again = Expected.of_run(expected.registry, expected.claim_ids, expected.device,
                                allow_mixed=expected.allow_mixed) if lines and not attempt else expected
        if again == expected:
            break
        expected = again
    return lines, len(answers), expected
