"""The ``rnnclaims`` console script (also ``python -m claims``).

    rnnclaims list [--json] [--profile P]
    rnnclaims run --profile P [--out DIR] [--device auto] [--workers N] [--claims ID,ID] [--fresh]
    rnnclaims report RESULTS_DIR [B_DIR] --out DIR
    rnnclaims reproduce CLAIM_ID --recipe FILE_OR_JSON [--cell JSON] [--profile P] [--device D]

Exit codes: 0 success; 1 a run had cells ending in ``error`` (or a reproduced example fails its pass
rule); 2 bad input (one line ``rnnclaims: error: ...``, no traceback); 130 / 143 a run interrupted by
SIGINT / SIGTERM (every finished cell is kept; rerunning the same command resumes). Set
``RNNCLAIMS_DEBUG=1`` to see tracebacks. ``RNNCLAIMS_REGISTRY=module:NAME`` selects another claim set.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence, TextIO

__all__ = ["main", "build_parser"]

PROG = "rnnclaims"


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise UsageError(message)


def build_parser() -> argparse.ArgumentParser:
    from claims.profiles import PROFILE_NAMES

    parser = _Parser(prog=PROG, description="Property-based checks of the lemmas of Wang et al. (NeurIPS 2021) on real ReLU RNNs.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="the catalogue: ids, titles, statements")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--profile", default=None, help=f"also count each claim's cells under this profile ({', '.join(PROFILE_NAMES)})")

    p = sub.add_parser("run", help="run the claims of a profile; writes OUT/results and OUT/index.html")
    p.add_argument("--profile", default="quick", help=f"one of {', '.join(PROFILE_NAMES)} (default quick)")
    p.add_argument("--out", default="reports/latest", help="output directory (default reports/latest); a rerun into it resumes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--workers", default="1", help="worker processes (>= 1, default 1)")
    p.add_argument("--claims", default=None, help="comma-separated claim ids (default: all)")
    p.add_argument("--fresh", action="store_true", help="rerun every cell instead of resuming")
    p.add_argument("--no-report", action="store_true", help="do not build the HTML report")

    p = sub.add_parser("report", help="rebuild the HTML report from stored results")
    p.add_argument("results", metavar="RESULTS_DIR")
    p.add_argument("compare", metavar="B_DIR", nargs="?", default=None, help="a second result set to compare against")
    p.add_argument("--out", required=True, help="output directory for index.html")

    p = sub.add_parser("reproduce", help="re-run one example from its recipe or stored record")
    p.add_argument("claim_id", metavar="CLAIM_ID")
    p.add_argument("--recipe", required=True, help="a recipe or a stored record: file path or JSON text")
    p.add_argument("--cell", default=None, help="the cell as JSON (required with a bare recipe)")
    p.add_argument("--profile", default=None, help="profile (default: the record's, else smoke)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    return parser


def _parse_workers(text: str) -> int:
    try:
        workers = int(text)
    except ValueError:
        raise UsageError(f"--workers must be an integer >= 1, got {text!r}") from None
    if workers < 1:
        raise UsageError(f"--workers must be an integer >= 1, got {workers}")
    return workers


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from claims.profiles import get_profile
    from claims.registry import all_claims

    profile = get_profile(args.profile) if args.profile else None
    rows = []
    for claim in all_claims():
        row = {
            "id": claim.id,
            "title": claim.title,
            "operationalizes": claim.operationalizes,
            "statement": claim.statement,
            "pass_rule": claim.pass_rule,
            "negative_control": claim.negative_control,
            "axes": list(claim.axes),
            "declared": dict(claim.declared),
            "delta": claim.delta,
        }
        if profile is not None:
            row["cells"] = len(claim.cells(profile))
        rows.append(row)
    if args.json:
        out.write(json.dumps(rows, indent=1) + "\n")
        return 0
    if not rows:
        out.write("no claims registered\n")
        return 0
    for row in rows:
        cells = f"  [{row['cells']} cells under {profile.name}]" if profile else ""
        out.write(f"{row['id']:<11} {row['title']}{cells}\n")
        out.write(f"{'':<11} {row['statement']}\n")
    return 0


class _Progress:
    """Progress on stderr: a rewritten line on a terminal, one line per cell otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.width = 0

    def __call__(self, event) -> None:
        minutes, seconds = divmod(int(event.elapsed_s), 60)
        if event.kind == "start":
            text = f"{event.total} cells ({event.resumed} resumed from earlier runs)"
            self.stream.write(text + "\n")
        elif event.kind == "cell":
            text = (f"[{event.done:>{len(str(event.total))}}/{event.total}] {minutes:02d}:{seconds:02d} "
                    f"{event.claim} {event.cell_key}: {event.verdict}")
            if self.tty:
                self.stream.write("\r" + text.ljust(self.width)[: max(self.width, len(text))])
                self.width = len(text)
            else:
                self.stream.write(text + "\n")
        elif event.kind == "finish" and self.tty:
            self.stream.write("\n")
        self.stream.flush()


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from claims.profiles import get_profile
    from claims.registry import resolve_registry, select_claims
    from claims.runner import resolve_device, run_profile

    profile = get_profile(args.profile)
    workers = _parse_workers(args.workers)
    device = resolve_device(args.device)
    registry = resolve_registry()
    selected = select_claims(args.claims, registry)
    if not selected:
        raise UsageError(f"no claims registered in {registry.spec!r}")
    summary = run_profile(
        profile, args.out, device=args.device, workers=workers, claims=[c.id for c in selected],
        resume=not args.fresh, progress=_Progress(err), registry=registry, report=not args.no_report,
    )
    out.write(f"profile {profile.name}, device {device}, {summary.total} cells "
              f"({summary.ran} run, {summary.resumed} resumed), wall {summary.wall_s:.1f} s\n")
    for claim_id, seconds in summary.per_claim_wall_s.items():
        counts = {}
        for record in summary.records:
            if record.get("claim") == claim_id:
                counts[record["verdict"]] = counts.get(record["verdict"], 0) + 1
        verdicts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        out.write(f"  {claim_id:<11} {seconds:8.1f} s  {verdicts}\n")
    out.write(f"results: {summary.results_dir}\n")
    if summary.interrupted is not None:
        out.write(f"interrupted by signal {summary.interrupted}: finished cells are kept; "
                  f"rerun the same command to resume\n")
        return 128 + int(summary.interrupted)
    if summary.report_path is not None:
        out.write(f"report: {summary.report_path}\n")
    elif summary.report_error:
        out.write(f"{summary.report_error}\n")
    errors = summary.verdict_counts().get("error", 0)
    if errors:
        out.write(f"{errors} cell(s) ended in error; see the 'message' field of their records\n")
        return 1
    return 0


def _cmd_report(args: argparse.Namespace, out: TextIO) -> int:
    from claims.store import results_dir_of

    results = results_dir_of(args.results)
    if not results.is_dir():
        raise UsageError(f"RESULTS_DIR {args.results!r} has no results directory")
    compare = None
    if args.compare is not None:
        compare = results_dir_of(args.compare)
        if not compare.is_dir():
            raise UsageError(f"B_DIR {args.compare!r} has no results directory")
    try:
        from reports.build import build_report
    except ImportError as exc:
        raise UsageError(f"the reports package is not available: {exc}") from None
    path = build_report(results, Path(args.out), compare_dir=compare)
    out.write(f"report: {path}\n")
    return 0


def _cmd_reproduce(args: argparse.Namespace, out: TextIO) -> int:
    from claims.runner import reproduce

    outcome = reproduce(args.claim_id, args.recipe, args.cell, profile=args.profile, device=args.device,
                        echo=lambda line: out.write(line + "\n"))
    return 1 if outcome.ok is False else 0


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    debug = os.environ.get("RNNCLAIMS_DEBUG", "") not in ("", "0")
    try:
        args = build_parser().parse_args(argv)
        if args.command == "list":
            return _cmd_list(args, out)
        if args.command == "run":
            return _cmd_run(args, out, err)
        if args.command == "report":
            return _cmd_report(args, out)
        return _cmd_reproduce(args, out)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except (UsageError, ValueError, TypeError, FileNotFoundError, ImportError, OSError) as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return 2
    except Exception as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: unexpected {type(exc).__name__}: {_one_line(exc)} (RNNCLAIMS_DEBUG=1 shows the traceback)\n")
        return 1


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
