"""Running claims: one cell (:func:`run_cell`), a whole profile (:func:`run_profile`), one example
(:func:`reproduce`).

One cell
    1. memory guard: ``claim.memory_bytes(cell, profile)`` against the memory available on the device
       (free GPU memory, or ``MemAvailable`` on the CPU); a cell that needs more than 90% of it is
       ``skipped`` with the reason.
    2. ``profile.examples`` recipes are drawn from ``claim.strategy(cell, profile)`` by hypothesis's
       generate phase with ``derandomize=True, database=None, deadline=None`` and an explicit seed that
       is a hash of the claim id and the cell key: the draw is reproducible, and different cells draw
       different recipes. Nothing fails inside hypothesis, so it prints nothing.
    3. each recipe is evaluated with ``claim.evaluate(cell, recipe, ctx)``; an exception ends the cell
       with verdict ``error`` and the message (other cells go on).
    4. measured values are aggregated per key (mean/min/max), the margin is the worst (largest) over
       the examples, series rows get ``"example": i``, measured constants are aggregated by max, and
       :func:`claims.verdict.decide_verdict` gives the verdict.
    5. when a non-control cell has a failing example and ``profile.shrink_budget > 0``, hypothesis
       replays the same draw (already-evaluated recipes are cached, so replay is free) and shrinks the
       first failure, evaluating at most ``shrink_budget`` new recipes; the smallest failing recipe it
       reached is stored with ``shrunk: true`` (else the first failing recipe, ``shrunk: false``).

A profile
    :func:`run_profile` enumerates every (claim, cell), runs the cells (in a spawn-context process pool
    when ``workers > 1``, torch threads per worker = max(1, cores // workers)), and writes each record
    the moment its cell finishes, so **a rerun into the same output resumes**: cells whose record exists
    for the same profile are skipped (cells that ended in ``error`` are run again); ``resume=False``
    (``--fresh``) reruns everything. A results directory holds one profile: records of another profile
    are removed when a run starts. SIGINT / SIGTERM stop scheduling, shut the pool down (running cells
    are abandoned; every finished record is already on disk) and the run reports the signal
    (the CLI exits 130 / 143).

Claim sets
    Claims come from a :class:`claims.registry.Registry` (default: the catalogue; the environment
    variable ``RNNCLAIMS_REGISTRY=module:NAME`` or ``registry=`` picks another, e.g. the engine's toy
    claims in ``tests/toy_claims.py``). Worker processes find the same registry from its spec.
"""

from __future__ import annotations

import concurrent.futures as cf
import functools
import hashlib
import json
import math
import multiprocessing
import os
import platform
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable

import torch

from claims.base import Claim, Context, Outcome, cell_key
from claims.profiles import Profile, get_profile
from claims.registry import (
    Registry,
    recipe_from_dict,
    recipe_to_dict,
    resolve_registry,
    select_claims,
)
from claims.store import (
    SCHEMA,
    json_safe,
    read_json,
    read_record,
    record_path,
    remove_stale_temps,
    write_record,
    write_run_meta,
)
from claims.verdict import clopper_pearson, decide_verdict

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

MEMORY_FRACTION = 0.9  # a cell may use at most this fraction of the available memory


class RunInterrupted(KeyboardInterrupt):
    """Raised in the main process by SIGINT / SIGTERM during :func:`run_profile`."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by signal {signum}")
        self.signum = signum


# --------------------------------------------------------------------------------------------------
# device, memory, environment


def _own_resolve_device(device: str | torch.device) -> torch.device:
    """Fallback used only when ``rnn_core._device`` cannot be imported."""
    allowed = "'auto', 'cpu', 'cuda', 'cuda:N'"
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"device must be one of {allowed}, got {device!r}")
    name = device.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or (name.startswith("cuda:") and name[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} requested but CUDA is not available; use 'auto' or 'cpu'")
        index = int(name[5:]) if ":" in name else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
        return torch.device(name)
    raise ValueError(f"device must be one of {allowed}, got {device!r}")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``rnn_core._device.resolve_device`` when present, else an equivalent local resolver.

    Unknown or unavailable devices raise ``ValueError`` naming the allowed values."""
    try:
        from rnn_core._device import resolve_device as core_resolve
    except ImportError:
        return _own_resolve_device(device)
    return core_resolve(device)


def available_memory(device: torch.device) -> int | None:
    """Bytes available for a new allocation on ``device`` (None when unknown)."""
    if device.type == "cuda":
        try:
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
def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


@functools.lru_cache(maxsize=1)
def _versions() -> dict[str, str]:
    import hypothesis
    import numpy
    import scipy

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "scipy": scipy.__version__,
        "hypothesis": hypothesis.__version__,
        "platform": platform.platform(),
    }


def environment_info() -> dict[str, Any]:
    """Library versions and the git commit, as stored in every record."""
    return {"versions": dict(_versions()), "git_commit": _git_commit()}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# --------------------------------------------------------------------------------------------------
# drawing and shrinking recipes


def cell_seed(claim_id: str, cell: dict) -> int:
    """The seed of a cell's derandomized draw: a hash of the claim id and the cell key."""
    digest = hashlib.sha256(f"{claim_id.upper()}|{cell_key(cell)}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


def _hyp_settings(max_examples: int, phases: list) -> Any:
    from hypothesis import HealthCheck, Verbosity, settings

    return settings(
        max_examples=max_examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=phases,
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
        print_blob=False,
        report_multiple_bugs=False,
    )


def draw_recipes(strategy: Any, count: int, seed: int) -> list[Any]:
    """Up to ``count`` recipes from ``strategy`` by hypothesis's generate phase, reproducibly for a
    given ``seed`` (fewer when the strategy's space is exhausted).

    Hypothesis always tries the simplest example first (all seeds 0, smallest sizes), the same in every
    cell; it is dropped when the strategy can produce more, so the examples are seeded draws."""
    from hypothesis import Phase, given
    from hypothesis import seed as hyp_seed

    if count < 1:
        raise ValueError(f"count must be >= 1, got {count}")
    drawn: list[Any] = []

    @hyp_seed(seed)
    @_hyp_settings(count + 1, [Phase.generate])
    @given(strategy)
    def _collect(recipe: Any) -> None:
        drawn.append(recipe)

    _collect()
    return drawn[1 : count + 1] if len(drawn) > count else drawn


class _ExampleFails(Exception):
    """Raised inside the shrink probe to tell hypothesis that a recipe fails the pass rule."""


def _recipe_key(recipe: Any) -> str:
    return json.dumps(json_safe(recipe_to_dict(recipe)), sort_keys=True)


def _shrink(
    claim: Claim,
    cell: dict,
    ctx: Context,
    strategy: Any,
    seed: int,
    count: int,
    budget: int,
    cache: dict[str, tuple[bool, Outcome | None]],
) -> tuple[Any | None, int]:
    """Replay the draw with the shrink phase on; returns (smallest failing recipe reached or None,
    number of new evaluations). At most ``budget`` recipes outside ``cache`` are evaluated; after that
    every unseen recipe counts as passing, so hypothesis stops making progress."""
    from hypothesis import Phase, given
    from hypothesis import seed as hyp_seed

    state: dict[str, Any] = {"evaluations": 0, "best": None}

    def fails(recipe: Any) -> bool:
        key = _recipe_key(recipe)
        if key not in cache:
            if state["evaluations"] >= budget:
                return False
            state["evaluations"] += 1
            try:
                outcome = claim.evaluate(cell, recipe, ctx)
                cache[key] = (isinstance(outcome, Outcome) and outcome.ok is False, outcome)
            except Exception:  # an error is not the failure being shrunk
                cache[key] = (False, None)
        failed = cache[key][0]
        if failed:
            state["best"] = recipe
        return failed

    @hyp_seed(seed)
    @_hyp_settings(count + 1, [Phase.generate, Phase.shrink])  # the same draw as draw_recipes
    @given(strategy)
    def _probe(recipe: Any) -> None:
        if fails(recipe):
            raise _ExampleFails()

    try:
        _probe()
    except _ExampleFails:
        pass
    except Exception:  # e.g. hypothesis's Flaky when a replay disagrees; keep what was reached
        pass
    return state["best"], state["evaluations"]


# --------------------------------------------------------------------------------------------------
# aggregation


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, bool)) and not isinstance(value, str)


def _aggregate_measured(outcomes: list[Outcome]) -> dict[str, dict]:
    keys: list[str] = []
    for outcome in outcomes:
        for key in outcome.measured:
            if key not in keys:
                keys.append(key)
    result: dict[str, dict] = {}
    for key in keys:
        values = [o.measured.get(key) for o in outcomes if key in o.measured]
        numbers = [float(v) for v in values if _is_number(v) or getattr(v, "ndim", None) == 0]
        if numbers or not values:
            finite = [v for v in numbers if math.isfinite(v)]
            result[key] = {
                "mean": sum(finite) / len(finite) if finite else math.nan,
                "min": min(finite) if finite else math.nan,
                "max": max(finite) if finite else math.nan,
                "n": len(finite),
            }
        else:
            distinct: list[Any] = []
            for v in values:
                safe = json_safe(v)
                if safe not in distinct:
                    distinct.append(safe)
            result[key] = {"values": distinct[:20]}
    return result


def _aggregate_constants(outcomes: list[Outcome]) -> dict[str, float]:
    result: dict[str, float] = {}
    for outcome in outcomes:
        for key, value in outcome.constants.items():
            value = float(value)
            if not math.isfinite(value):
                result.setdefault(key, math.nan)
                continue
            old = result.get(key, math.nan)
            result[key] = value if math.isnan(old) else max(old, value)
    return result


def _seeds_of(recipe_dict: dict, prefix: str = "") -> dict[str, Any]:
    seeds: dict[str, Any] = {}
    for key, value in recipe_dict.items():
        if isinstance(value, dict):
            seeds.update(_seeds_of(value, f"{prefix}{key}."))
        elif "seed" in key.lower():
            seeds[f"{prefix}{key}"] = value
    return seeds


# --------------------------------------------------------------------------------------------------
# one cell


def _base_record(claim: Claim, cell: dict, profile: Profile, device: torch.device | str) -> dict:
    control = bool(cell.get("control", False))
    return {
        "schema": SCHEMA,
        "claim": claim.id,
        "title": claim.title,
        "cell_key": cell_key(cell),
        "cell": json_safe(cell),
        "params": json_safe({k: v for k, v in cell.items() if k != "control"}),
        "control": control,
        "verdict": "error",
        "must_hold": False,
        "examples": 0,
        "failures": 0,
        "inconclusive": 0,
        "failure_rate_ci": [0.0, 1.0],
        "delta": claim.delta,
        "margin": math.nan,
        "margins": [],
        "example_ok": [],
        "measured": {},
        "declared_constants": dict(claim.declared),
        "measured_constants": {},
        "series": [],
        "failing_recipe": None,
        "failing_outcome": None,
        "shrunk": False,
        "shrink_evaluations": 0,
        "error_recipe": None,
        "recipes": [],
        "seeds": {},
        "device": str(device),
        **environment_info(),
        "profile": profile.name,
        "started": _now(),
        "duration_s": 0.0,
        "message": "",
    }


def _outcome_summary(outcome: Outcome | None) -> dict | None:
    if outcome is None:
        return None
    return {"ok": outcome.ok, "margin": outcome.margin, "measured": json_safe(outcome.measured),
            "constants": json_safe(outcome.constants)}


def run_cell(
    claim: Claim,
    cell: dict,
    profile: Profile | str,
    *,
    device: str | torch.device = "auto",
    out_dir: str | os.PathLike | None = None,
) -> dict:
    """Run one cell of ``claim`` and return its record (the module docstring says how).

    Errors inside the claim (strategy, evaluation, estimates) never propagate: they give verdict
    ``error`` with the message. Bad arguments (unknown profile or device) raise ``ValueError``. When
    ``out_dir`` is given, the record is also written to ``out_dir/results/<CLAIM>/<cell_key>.json``.
    """
    profile = get_profile(profile)
    if not isinstance(cell, dict):
        raise ValueError(f"cell must be a dict of parameters, got {type(cell).__name__}")
    record = _evaluate_cell(claim, cell, profile, resolve_device(device))
    if out_dir is not None:  # only complete records: an interrupt propagates before this line
        write_record(Path(out_dir) / "results", record)
    return record


def _evaluate_cell(claim: Claim, cell: dict, profile: Profile, dev: torch.device) -> dict:
    t0 = time.perf_counter()
    record = _base_record(claim, cell, profile, dev)
    control = record["control"]
    stage = "must_hold"
    try:
        record["must_hold"] = (not control) and bool(claim.must_hold(cell, profile))
        stage = "memory_bytes"
        need = int(claim.memory_bytes(cell, profile))
        have = available_memory(dev)
        if have is not None and need > MEMORY_FRACTION * have:
            record["verdict"] = "skipped"
            record["message"] = (
                f"memory guard: needs about {need / 2**30:.2f} GiB, "
                f"{have / 2**30:.2f} GiB available on {dev}"
            )
            return record
        stage = "strategy"
        seed = cell_seed(claim.id, cell)
        record["seeds"] = {"draw_seed": seed, "examples": []}
        strategy = claim.strategy(cell, profile)
        recipes = draw_recipes(strategy, profile.examples, seed)
        if not recipes:
            raise RuntimeError("the strategy produced no recipes")
        recipe_dicts = [json_safe(recipe_to_dict(r)) for r in recipes]
        record["recipes"] = recipe_dicts
        record["seeds"]["examples"] = [_seeds_of(d) for d in recipe_dicts]

        ctx = Context(device=dev, profile=profile)
        outcomes: list[Outcome] = []
        cache: dict[str, tuple[bool, Outcome | None]] = {}
        for i, recipe in enumerate(recipes):
            stage = f"evaluate (example {i})"
            try:
                outcome = claim.evaluate(cell, recipe, ctx)
                if not isinstance(outcome, Outcome):
                    raise TypeError(f"evaluate must return claims.base.Outcome, got {type(outcome).__name__}")
            except Exception:
                record["error_recipe"] = recipe_dicts[i]
                raise
            outcomes.append(outcome)
            cache[_recipe_key(recipe)] = (outcome.ok is False, outcome)

        stage = "aggregate"
        failures = sum(1 for o in outcomes if o.ok is False)
        inconclusive = sum(1 for o in outcomes if o.ok is None)
        k = len(outcomes) - inconclusive
        margins = [float(o.margin) for o in outcomes]
        finite_margins = [m for m in margins if math.isfinite(m)]
        series: list[dict] = []
        for i, outcome in enumerate(outcomes):
            for row in outcome.series:
                series.append({**row, "example": i})
        record.update(
            examples=len(outcomes),
            failures=failures,
            inconclusive=inconclusive,
            failure_rate_ci=list(clopper_pearson(failures, k)),
            margin=max(finite_margins) if finite_margins else math.nan,
            margins=margins,
            example_ok=[o.ok for o in outcomes],
            measured=_aggregate_measured(outcomes),
            measured_constants=_aggregate_constants(outcomes),
            series=series,
            verdict=decide_verdict(failures, k, claim.delta),
        )
        if failures:
            first = next(i for i, o in enumerate(outcomes) if o.ok is False)
            record["failing_recipe"] = recipe_dicts[first]
            record["failing_outcome"] = _outcome_summary(outcomes[first])
            record["failing_example"] = first
            budget = profile.shrink_budget
            if claim.max_shrink is not None:
                budget = min(budget, claim.max_shrink)
            if not control and budget > 0:
                stage = "shrink"
                best, evaluations = _shrink(claim, cell, ctx, strategy, seed, len(recipes), budget, cache)
                record["shrink_evaluations"] = evaluations
                if best is not None:
                    record["failing_recipe"] = json_safe(recipe_to_dict(best))
                    record["failing_outcome"] = _outcome_summary(cache[_recipe_key(best)][1])
                    record["shrunk"] = True
        return record
    except Exception as exc:
        record["verdict"] = "error"
        record["message"] = f"{stage}: {type(exc).__name__}: {exc}"
        record["traceback"] = traceback.format_exc(limit=-8)
        return record
    finally:
        record["duration_s"] = time.perf_counter() - t0


def _error_record(claim: Claim, cell: dict, profile: Profile, device: torch.device, message: str) -> dict:
    record = _base_record(claim, cell, profile, device)
    record["message"] = message
    return record


# --------------------------------------------------------------------------------------------------
# a profile


@dataclass(frozen=True)
class ProgressEvent:
    """What :func:`run_profile` tells its ``progress`` callback.

    kind: "start" (before the first cell), "cell" (a cell finished), "finish" (after the last).
    done counts resumed cells too; claim / cell_key / verdict describe the finished cell ("cell") or
    the next cell to run ("start").
    """

    kind: str
    done: int
    total: int
    resumed: int
    elapsed_s: float
    claim: str | None = None
    cell_key: str | None = None
    verdict: str | None = None


@dataclass
class RunSummary:
    """The outcome of :func:`run_profile`."""

    out_dir: Path
    results_dir: Path
    profile: str
    device: str
    records: list[dict] = field(default_factory=list)  # every cell of the run, resumed ones included
    ran: int = 0
    resumed: int = 0
    total: int = 0
    per_claim_wall_s: dict[str, float] = field(default_factory=dict)
    wall_s: float = 0.0
    interrupted: int | None = None  # the signal number when interrupted
    report_path: Path | None = None
    report_error: str | None = None

    def verdict_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for record in self.records:
            counts[record["verdict"]] = counts.get(record["verdict"], 0) + 1
        return counts


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _worker_init(threads: int) -> None:
    # The parent decides about interrupts; a worker ignores SIGINT (sent to the whole process group by
    # a terminal) and dies on SIGTERM (sent by the parent when it shuts the pool down).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    torch.set_num_threads(threads)


def _pool_task(registry_spec: str, claim_id: str, cell: dict, profile: Profile, device: str,
               results_dir: str) -> dict:
    claim = resolve_registry(registry_spec).get(claim_id)
    record = run_cell(claim, cell, profile, device=device)
    write_record(results_dir, record)
    return record


def _same_cell(record: dict, cell: dict) -> bool:
    return record.get("cell") == json_safe(cell)


def _prune(results_dir: Path, profile: Profile, selected: list[Claim], keep: set[tuple[str, str]],
           fresh: bool) -> None:
    """Remove records that do not belong to this run's profile, and, for the selected claims, records
    of cells the profile does not define (all of them when ``fresh``)."""
    selected_ids = {c.id for c in selected}
    for path in results_dir.glob("*/*.json"):
        if path.name.startswith("."):
            continue
        record = read_record(path)
        if record is None:
            continue
        other_profile = record.get("profile") != profile.name
        ours = record.get("claim") in selected_ids
        not_in_grid = (record.get("claim"), record.get("cell_key")) not in keep
        if other_profile or (ours and (fresh or not_in_grid)):
            try:
                path.unlink()
            except OSError:
                pass


def run_profile(
    profile: Profile | str,
    out: str | os.PathLike,
    *,
    device: str | torch.device = "auto",
    workers: int = 1,
    claims: str | Iterable[str | Claim] | None = None,
    resume: bool = True,
    progress: Callable[[ProgressEvent], None] | None = None,
    registry: str | Registry | None = None,
    report: bool = True,
) -> RunSummary:
    """Run every cell of the selected claims under ``profile`` into ``out`` (see the module docstring).

    out: the output directory; records go to ``out/results``, the HTML report to ``out``.
    workers: processes (>= 1); claims: ids ("A,B" or a list) or Claim objects, None for all;
    resume: skip cells already stored for this profile; progress: called with :class:`ProgressEvent`;
    registry: where claims come from (default: ``RNNCLAIMS_REGISTRY`` or the catalogue);
    report: build the HTML report with ``reports.build.build_report`` when that package imports.
    """
    profile = get_profile(profile)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    dev = resolve_device(device)
    reg = resolve_registry(registry)
    selected = select_claims(claims, reg)
    if not selected:
        raise ValueError(f"no claims registered in {reg.spec!r}")
    if workers > 1:
        for claim in selected:
            if claim.id not in reg or reg.get(claim.id) is not claim:
                raise ValueError(
                    f"claim {claim.id} is not in registry {reg.spec!r}; with workers > 1 every claim "
                    "must come from the registry so that worker processes can find it"
                )

    started, t_start = _now(), time.perf_counter()
    out_dir = Path(out)
    results_dir = out_dir / "results"
    results_dir.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(results_dir)

    # enumerate cells
    grid: list[tuple[Claim, dict]] = []
    cell_errors: list[dict] = []
    for claim in selected:
        try:
            cells = list(claim.cells(profile))
            keys = [cell_key(c) for c in cells]
            if len(set(keys)) != len(keys):
                raise ValueError("cells() returned duplicate cells")
        except Exception as exc:
            pseudo = {"cells_error": True}
            cell_errors.append(_error_record(claim, pseudo, profile, dev, f"cells: {type(exc).__name__}: {exc}"))
            continue
        grid.extend((claim, cell) for cell in cells)
    keep = {(c.id, cell_key(cell)) for c, cell in grid} | {(r["claim"], r["cell_key"]) for r in cell_errors}
    _prune(results_dir, profile, selected, keep, fresh=not resume)

    summary = RunSummary(out_dir=out_dir, results_dir=results_dir, profile=profile.name, device=str(dev))
    for record in cell_errors:
        write_record(results_dir, record)
        summary.records.append(record)
    tasks: deque[tuple[Claim, dict]] = deque()
    for claim, cell in grid:
        existing = read_record(record_path(results_dir, claim.id, cell_key(cell))) if resume else None
        if (existing and existing.get("profile") == profile.name and existing.get("verdict") != "error"
                and _same_cell(existing, cell)):
            summary.records.append(existing)
            summary.resumed += 1
        else:
            tasks.append((claim, cell))
    summary.total = len(grid) + len(cell_errors)

    def emit(kind: str, record: dict | None = None, nxt: tuple[Claim, dict] | None = None) -> None:
        if progress is None:
            return
        event = ProgressEvent(
            kind=kind, done=len(summary.records), total=summary.total, resumed=summary.resumed,
            elapsed_s=time.perf_counter() - t_start,
            claim=(record or {}).get("claim") or (nxt[0].id if nxt else None),
            cell_key=(record or {}).get("cell_key") or (cell_key(nxt[1]) if nxt else None),
            verdict=(record or {}).get("verdict"),
        )
        progress(event)

    def finished(record: dict) -> None:
        summary.records.append(record)
        summary.ran += 1
        emit("cell", record)

    previous: dict[int, Any] = {}
    in_main = threading.current_thread() is threading.main_thread()

    def on_signal(signum: int, frame: Any) -> None:
        raise RunInterrupted(signum)

    if in_main:
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, on_signal)
    executor: cf.ProcessPoolExecutor | None = None
    try:
        emit("start", nxt=tasks[0] if tasks else None)
        if workers == 1:
            while tasks:
                claim, cell = tasks.popleft()
                finished(run_cell(claim, cell, profile, device=dev, out_dir=out_dir))
        else:
            executor = _run_pool(tasks, reg, profile, dev, workers, results_dir, finished)
    except KeyboardInterrupt as exc:
        summary.interrupted = getattr(exc, "signum", signal.SIGINT)
    finally:
        if in_main:
            for sig in previous:  # a second signal during cleanup must not abort it
                signal.signal(sig, signal.SIG_IGN)
        if executor is not None:
            _shutdown_pool(executor)
        summary.wall_s = time.perf_counter() - t_start
        _finish_run(summary, profile, selected, workers, started)
        if in_main:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    emit("finish")
    if report and summary.interrupted is None:
        summary.report_path, summary.report_error = _build_report(results_dir, out_dir)
    return summary


def _run_pool(tasks: deque, reg: Registry, profile: Profile, dev: torch.device, workers: int,
              results_dir: Path, finished: Callable[[dict], None]) -> cf.ProcessPoolExecutor:
    """Run ``tasks`` on a spawn-context pool, keeping at most 2 * workers cells scheduled so that an
    interrupt stops scheduling at once. Returns the (last) executor for the caller to shut down."""
    threads = max(1, _cores() // workers)
    context = multiprocessing.get_context("spawn")

    def new_executor() -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(max_workers=workers, mp_context=context,
                                      initializer=_worker_init, initargs=(threads,))

    executor = new_executor()
    running: dict[cf.Future, tuple[Claim, dict]] = {}
    try:
        while tasks or running:
            while tasks and len(running) < 2 * workers:
                claim, cell = tasks.popleft()
                fut = executor.submit(_pool_task, reg.spec, claim.id, cell, profile, str(dev), str(results_dir))
                running[fut] = (claim, cell)
            done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
            broken = False
            for fut in done:
                claim, cell = running.pop(fut)
                try:
                    record = fut.result()
                except Exception as exc:  # the worker died (e.g. killed for memory) or could not pickle
                    broken = broken or isinstance(exc, cf.process.BrokenProcessPool)
                    record = _error_record(claim, cell, profile, dev,
                                           f"worker process failed while running this cell or a concurrent "
                                           f"one: {type(exc).__name__}: {exc}")
                    write_record(results_dir, record)
                finished(record)
            if broken:
                _shutdown_pool(executor)
                for fut, (claim, cell) in list(running.items()):  # lost with the pool: run them again
                    tasks.appendleft((claim, cell))
                running.clear()
                executor = new_executor()
    except BaseException:
        for fut in running:
            fut.cancel()
        raise
    return executor


def _shutdown_pool(executor: cf.ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel queued cells and terminate the workers (their finished records are
    already on disk; an abandoned write leaves only a temp file)."""
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=10)


def _finish_run(summary: RunSummary, profile: Profile, selected: list[Claim], workers: int, started: str) -> None:
    per_claim: dict[str, dict] = {}
    for claim in selected:
        records = [r for r in summary.records if r.get("claim") == claim.id]
        verdicts: dict[str, int] = {}
        for r in records:
            verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        per_claim[claim.id] = {
            "cells": len(records),
            "seconds": sum(float(r.get("duration_s") or 0.0) for r in records),
            "verdicts": verdicts,
        }
    summary.per_claim_wall_s = {cid: info["seconds"] for cid, info in per_claim.items()}
    meta = {
        "schema": SCHEMA,
        "source": "rnnclaims run",
        "profile": profile.name,
        "profile_settings": profile.to_dict(),
        "device": summary.device,
        "workers": workers,
        "claims": [c.id for c in selected],
        "started": started,
        "finished": _now(),
        "wall_s": summary.wall_s,
        # seconds spent on each claim's cells (sum of cell durations, resumed cells included; equal to
        # the wall time with one worker)
        "per_claim_wall_s": summary.per_claim_wall_s,
        "per_claim": per_claim,
        "cells_total": summary.total,
        "cells_run": summary.ran,
        "cells_resumed": summary.resumed,
        "verdicts": summary.verdict_counts(),
        "interrupted": summary.interrupted is not None,
        "signal": summary.interrupted,
        **environment_info(),
    }
    write_run_meta(summary.results_dir, meta)


def _build_report(results_dir: Path, out_dir: Path) -> tuple[Path | None, str | None]:
    try:
        from reports.build import build_report
    except ImportError as exc:
        return None, f"report not built: the reports package is not available ({exc})"
    try:
        return Path(build_report(results_dir, out_dir)), None
    except Exception as exc:
        return None, f"report not built: {type(exc).__name__}: {exc}"


# --------------------------------------------------------------------------------------------------
# one example


def _load_json_arg(value: Any, what: str) -> Any:
    if not isinstance(value, (str, os.PathLike)):
        return value
    text = os.fspath(value)
    if os.path.isfile(text):
        try:
            return read_json(text)
        except ValueError as exc:
            raise ValueError(f"{what}: file {text!r} is not valid JSON: {exc}") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{what} must be an existing JSON file or a JSON object, got {text[:80]!r}") from exc


def reproduce(
    claim_id: str,
    recipe: str | os.PathLike | dict,
    cell: str | dict | None = None,
    *,
    profile: Profile | str | None = None,
    device: str | torch.device = "auto",
    registry: str | Registry | None = None,
    echo: Callable[[str], None] = print,
) -> Outcome:
    """Re-run one example and print its outcome.

    recipe: a recipe (dict, JSON text or file) or a stored record (dict, JSON text or file); a record
    supplies the cell, the profile and its failing recipe (else the recipe that raised, else its first
    recipe). A bare recipe needs ``cell``. profile defaults to the record's, else "smoke".
    Evaluation errors propagate (this is the place to see them)."""
    claim = resolve_registry(registry).get(claim_id)
    doc = _load_json_arg(recipe, "recipe")
    if not isinstance(doc, dict):
        raise ValueError(f"recipe must be a JSON object, got {type(doc).__name__}")
    cell_doc = _load_json_arg(cell, "cell") if cell is not None else None
    if "claim" in doc and "cell_key" in doc:  # a stored record
        if str(doc["claim"]).upper() != claim.id:
            raise ValueError(f"the record is for claim {doc['claim']!r}, not {claim.id!r}")
        for name in ("failing_recipe", "error_recipe"):
            if doc.get(name):
                recipe_doc, which = doc[name], name
                break
        else:
            if not doc.get("recipes"):
                raise ValueError("the record holds no recipe to reproduce")
            recipe_doc, which = doc["recipes"][0], "recipes[0]"
        echo(f"using the record's {which}")
        if cell_doc is None:
            cell_doc = doc.get("cell")
        if profile is None:
            profile = doc.get("profile")
    else:
        recipe_doc = doc
    if not isinstance(cell_doc, dict):
        raise ValueError("cell is required with a bare recipe: pass --cell '{\"m\": 64, ...}' (a JSON object)")
    prof = get_profile(profile or "smoke")
    dev = resolve_device(device)
    rebuilt = recipe_from_dict(claim, recipe_doc)
    outcome = claim.evaluate(cell_doc, rebuilt, Context(device=dev, profile=prof))
    if not isinstance(outcome, Outcome):
        raise TypeError(f"evaluate must return claims.base.Outcome, got {type(outcome).__name__}")
    status = {True: "passes", False: "FAILS", None: "inconclusive"}[outcome.ok]
    echo(f"claim {claim.id}  cell {json.dumps(json_safe(cell_doc), sort_keys=True)}  "
         f"profile {prof.name}  device {dev}")
    echo(f"recipe {json.dumps(json_safe(recipe_to_dict(rebuilt)), sort_keys=True)}")
    echo(f"example {status}: ok={outcome.ok} margin={outcome.margin:.6g}")
    if outcome.measured:
        echo(f"measured {json.dumps(json_safe(outcome.measured), sort_keys=True)}")
    if outcome.constants:
        echo(f"constants {json.dumps(json_safe(outcome.constants), sort_keys=True)} "
             f"(declared {json.dumps(json_safe(claim.declared), sort_keys=True)})")
    return outcome
