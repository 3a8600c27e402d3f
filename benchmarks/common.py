"""Timing, peak-memory and provenance helpers shared by the benchmarks."""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from claims.store import atomic_write_text

#: where run files go when the user names no folder: under the working directory, never inside the package
DEFAULT_OUT = Path("benchmark-results")


def add_out_argument(ap: argparse.ArgumentParser) -> None:
    """``--out DIR``: the folder that receives the numbered run files (default ./benchmark-results)."""
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="DIR",
                    help="folder for the numbered JSON run files (default: ./benchmark-results)")


def size_tuple(arity: int, names: str):
    """An argparse ``type`` for one size like ``64,32,1024``: ``arity`` integers >= 1 (``names`` for errors)."""

    def parse(text: str) -> tuple[int, ...]:
        try:
            values = tuple(int(v) for v in text.split(","))
        except ValueError:
            values = ()
        if len(values) != arity or min(values) < 1:
            raise argparse.ArgumentTypeError(f"a size is {arity} integers >= 1 as {names}, got {text!r}")
        return values

    return parse


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(fn: Callable[[], object], device: torch.device, *, repeats: int = 3, budget_s: float = 60.0):
    """Best wall time of ``repeats`` calls (first call included: no separate warm-up when one call is
    already expensive), and the last result. Stops repeating once ``budget_s`` is spent."""
    best, result, spent = float("inf"), None, 0.0
    for _ in range(repeats):
        sync(device)
        t0 = time.perf_counter()
        result = fn()
        sync(device)
        dt = time.perf_counter() - t0
        best, spent = min(best, dt), spent + dt
        if spent > budget_s:
            break
    return best, result


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB.

    Read from /proc/self/status (VmHWM), which belongs to the process's own address space: getrusage's
    ru_maxrss survives execve, so a probe started by a parent that had just peaked at 6 GiB would report
    the parent's peak. Falls back to ru_maxrss where /proc is missing.
    """
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def peak_memory_in_subprocess(module: str, args: list[str], timeout_s: float) -> float | None:
    """Run ``python -m module args`` in a fresh process and return its peak RSS in MiB (None on timeout).

    Peak RSS never goes down within a process, so each method's memory is measured in its own process;
    the times are measured side by side in the parent, on the same inputs.
    """
    cmd = [sys.executable, "-m", module, *args]
    try:
        # from the checkout root, where the (not installed) benchmarks package is importable
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=True,
                             cwd=Path(__file__).resolve().parents[1])
    except subprocess.TimeoutExpired:
        return None
    except subprocess.CalledProcessError as exc:
        raise RuntimeError(f"memory probe failed: {' '.join(cmd)}\n{exc.stderr}") from None
    return float(out.stdout.strip().splitlines()[-1])


def machine_info(device: torch.device) -> dict:
    info = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["git_commit"] = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        info["git_commit"] = None
    return info


@dataclass
class Table:
    """A printed table whose rows are also saved to a numbered JSON run file."""

    title: str
    columns: list[str]

    def __post_init__(self):
        self.rows: list[list[object]] = []

    def add(self, *row):
        self.rows.append(list(row))
        print(self._fmt(row), flush=True)

    def header(self):
        print(f"\n## {self.title}", flush=True)
        print(self._fmt(self.columns), flush=True)
        print("|" + "---|" * len(self.columns), flush=True)

    @staticmethod
    def _fmt(row):
        return "| " + " | ".join(str(c) for c in row) + " |"


def save_run(tables: list[Table], device: torch.device, out_dir: Path | str = DEFAULT_OUT) -> Path:
    """Write the tables with machine and commit info to OUT_DIR/NNNN_<commit>.json (OUT_DIR is created).

    The number is one more than the largest already there; if another run takes that name first, the
    next free number is used (the file appears complete or not at all).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = machine_info(device)
    payload = {"machine": info, "tables": [{"title": t.title, "columns": t.columns, "rows": t.rows} for t in tables]}
    text = json.dumps(payload, indent=2, default=str)
    number = 1 + max((int(p.name[:4]) for p in out_dir.glob("[0-9][0-9][0-9][0-9]_*.json")), default=0)
    while True:
        path = out_dir / f"{number:04d}_{(info['git_commit'] or 'nocommit')[:8]}.json"
        try:
            atomic_write_text(path, text, exclusive=True)
            return path
        except FileExistsError:
            number += 1


def fmt_s(x: float | None) -> str:
    return "—" if x is None else (f"{x:.4f} s" if x < 10 else f"{x:.1f} s")


def fmt_ratio(base: float | None, ours: float) -> str:
    return "—" if base is None else f"{base / ours:.1f}x"
