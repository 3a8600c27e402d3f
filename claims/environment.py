"""What a cell runs on: the device, its free memory, library versions, the git commit, the threads
of this worker. Each worker process (pool, Dask, xdist) calls :func:`configure_worker` once."""

from __future__ import annotations

import functools
import os
import platform
import socket
import subprocess
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = [
    "MEMORY_FRACTION",
    "resolve_device",
    "available_memory",
    "environment_info",
    "git_commit",
    "cores",
    "threads_per_worker",
    "configure_worker",
    "worker_info",
    "now",
]

MEMORY_FRACTION = 0.9  # a cell may use at most this fraction of the memory available to it


def resolve_device(device: Any = "auto") -> Any:
    """``rnn_core.resolve_device``: "auto" (CUDA when present), "cpu", "cuda", "cuda:N"; unknown or
    unavailable devices raise ``ValueError`` naming the allowed values."""
    from rnn_core import resolve_device as core_resolve

    return core_resolve(device)


def available_memory(device: Any) -> int | None:
    """Bytes available for a new allocation on ``device`` (None when unknown)."""
    if getattr(device, "type", str(device)) == "cuda":
        try:
            import torch

            free, _total = torch.cuda.mem_get_info(device)
            return int(free)
        except Exception:
            return None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


@functools.lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the source checkout this code runs from (None for an installed copy), with
    ``+dirty`` when tracked files differ from it."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=10, check=False)
        if out.returncode != 0 or not out.stdout.strip():
            return None
        commit = out.stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty.returncode == 0 and dirty.stdout.strip() else "")


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    import hypothesis
    import numpy
    import scipy
    import torch

    try:
        from importlib.metadata import version

        ours = version("rnn-claims")
    except Exception:
        ours = "unknown"
    return {
        "rnn_claims": ours,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
    }


def environment_info() -> dict[str, Any]:
    """Library versions and the git commit, as stored in every record."""
    return {"versions": dict(_versions()), "git_commit": git_commit()}


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def threads_per_worker(workers: int) -> int:
    """Each of ``workers`` processes on this machine gets an equal share of its cores (at least 1)."""
    return max(1, cores() // max(1, int(workers)))


_CONFIGURED: dict[str, Any] = {}


def configure_worker(threads: int | None = None, device: str | None = None) -> None:
    """Set this process's torch threads (and interop threads) and remember the device it uses."""
    import torch

    if threads is not None:
        torch.set_num_threads(max(1, int(threads)))
        os.environ["OMP_NUM_THREADS"] = str(max(1, int(threads)))
    _CONFIGURED["threads"] = torch.get_num_threads()
    if device is not None:
        _CONFIGURED["device"] = device


def worker_info(device: Any = None) -> dict[str, Any]:
    """Where a cell runs: host name, process id, torch threads, device."""
    import torch

    return {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "threads": torch.get_num_threads(),
        "device": str(device if device is not None else _CONFIGURED.get("device", "cpu")),
    }


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
