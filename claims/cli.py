"""The ``rnnclaims`` console script (also ``python -m claims``).

    rnnclaims list [--profile P] [--cost] [--json]
    rnnclaims run --profile P [--out DIR] [--device auto] [--workers N | --dask-local N | --scheduler ADDR]
                  [--claims ID,ID] [--fresh] [--seed S] [--dtype auto|float64] [--shard I/N] [--strict]
                  [--tls-ca-file PEM --tls-cert PEM --tls-key PEM] [--allow-mixed-workers]   (with --scheduler)
    rnnclaims report DIR [DIR ...] --out OUT [--compare B_DIR] [--allow-mixed]
    rnnclaims merge DIR [DIR ...] --out OUT [--allow-mixed]
    rnnclaims reproduce CLAIM_ID --recipe FILE_OR_JSON [--cell JSON] [--profile P] [--device D]
    rnnclaims export RESULTS --format csv|parquet --out DIR
    rnnclaims audit --profile smoke [--out DIR] [--faults F,F] [--workers N]

Every command takes ``--registry SPEC`` (claims.registry: ``default``, ``claims.catalogue``,
``package.module:NAME``, comma-separated), default ``$RNNCLAIMS_REGISTRY`` or ``default``.

Exit codes: 0 success; 1 ``--strict`` found a must-hold cell that does not hold or a control that does
not fail (one line per cell), a cell ended in ``error``, or a reproduced example fails; 2 bad input
(one line ``rnnclaims: error: ...``, no traceback); 3 an I/O or resource failure (full disk, unwritable
folder, a folder in use by another run, an example too large for the machine; the message names the
path); 130 / 143 a run interrupted by SIGINT / SIGTERM (every finished cell is kept; rerunning the same
command resumes). ``RNNCLAIMS_DEBUG=1`` shows tracebacks.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence, TextIO

__all__ = ["main", "build_parser", "EXIT_OK", "EXIT_FINDINGS", "EXIT_USAGE", "EXIT_IO"]

PROG = "rnnclaims"
EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_IO = 0, 1, 2, 3


class UsageError(Exception):
    """Bad command-line input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, no usage block
        raise UsageError(message)


def _add_registry(p: argparse.ArgumentParser) -> None:
    p.add_argument("--registry", default=None,
                   help="claim catalogues: 'default' (built-in + installed plugins), 'claims.catalogue', "
                        "'package.module:NAME', comma-separated (default $RNNCLAIMS_REGISTRY or 'default')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Property-based checks of deep-learning theory on real networks "
                                            "(built in: Wang et al., NeurIPS 2021, ReLU RNNs).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("list", help="the catalogue: ids, titles, statements")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--profile", default=None, help="also count each claim's cells under this profile")
    p.add_argument("--cost", action="store_true", help="with --profile: estimated seconds per claim and in total")
    _add_registry(p)

    p = sub.add_parser("run", help="run the claims of a profile; writes OUT/results and OUT/index.html")
    p.add_argument("--profile", default="quick", help="smoke, quick, standard, full or a registered one (default quick)")
    p.add_argument("--out", default="reports/latest", help="output folder (default reports/latest); a rerun resumes")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--workers", default="1", help="local worker processes (>= 1, default 1)")
    p.add_argument("--dask-local", default=None, metavar="N", help="run on a Dask LocalCluster of N worker processes")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="run on the Dask scheduler at ADDR (tls://HOST:PORT; tcp:// only on a trusted network)")
    p.add_argument("--tls-ca-file", default=None, metavar="PEM", help="with tls://: the cluster's CA certificate")
    p.add_argument("--tls-cert", default=None, metavar="PEM", help="with tls://: this controller's certificate")
    p.add_argument("--tls-key", default=None, metavar="PEM", help="with tls://: the private key of --tls-cert")
    p.add_argument("--allow-mixed-workers", action="store_true",
                   help="run even when workers differ from this controller in version, commit, torch, device "
                        "kind or catalogues (recorded in _run.json)")
    p.add_argument("--threads", default=None, metavar="T", help="torch threads per worker (default cores / workers)")
    p.add_argument("--claims", default=None, help="comma-separated claim ids (default: all)")
    p.add_argument("--fresh", action="store_true", help="delete this folder's conflicting records and rerun every cell")
    p.add_argument("--seed", default="0", help="run seed of every cell's draw (default 0, what CI uses)")
    p.add_argument("--dtype", default="auto", help="auto (each claim's declared precision) or float64 (force)")
    p.add_argument("--shard", default=None, metavar="I/N", help="run a deterministic, cost-balanced 1/N of the cells")
    p.add_argument("--strict", action="store_true",
                   help="exit 1 when a must-hold cell does not hold or a control does not fail")
    p.add_argument("--no-report", action="store_true", help="do not build the HTML report")
    _add_registry(p)

    for name, text in (("report", "build the HTML report from stored results (several folders: merged)"),
                       ("merge", "join shard results into one results folder and report")):
        p = sub.add_parser(name, help=text)
        p.add_argument("results", metavar="DIR", nargs="+")
        p.add_argument("--out", required=True, help="output folder")
        p.add_argument("--allow-mixed", action="store_true", help="merge results of different profiles, seeds or commits")
        if name == "report":
            p.add_argument("--compare", default=None, metavar="B_DIR", help="a second result set to compare against")
            p.add_argument("--audit", default=None, metavar="AUDIT_JSON", help="add the kill matrix of `rnnclaims audit`")
        _add_registry(p)

    p = sub.add_parser("reproduce", help="re-run one example from its recipe or stored record")
    p.add_argument("claim_id", metavar="CLAIM_ID")
    p.add_argument("--recipe", required=True, help="a recipe or a stored record: file path or JSON text")
    p.add_argument("--cell", default=None, help="the cell as JSON (required with a bare recipe)")
    p.add_argument("--profile", default=None, help="profile (default: the record's, else smoke)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (default auto)")
    p.add_argument("--dtype", default="auto", help="auto (the record's, else the claim's) or float64")
    _add_registry(p)

    p = sub.add_parser("export", help="tidy cells, series, thresholds and growth tables (CSV or parquet)")
    p.add_argument("results", metavar="RESULTS")
    p.add_argument("--format", default="csv", help="csv or parquet (default csv)")
    p.add_argument("--out", required=True, help="output folder for cells.*, series.*, thresholds.* and growth.*")

    p = sub.add_parser("audit", help="seeded faults in the RNN implementation: the kill matrix")
    p.add_argument("--profile", default="smoke", help="profile whose claims judge each fault (default smoke)")
    p.add_argument("--out", default="reports/audit", help="output folder (default reports/audit)")
    p.add_argument("--faults", default=None, help="comma-separated fault ids (default: all)")
    p.add_argument("--claims", default=None, help="comma-separated claim ids (default: all)")
    p.add_argument("--workers", default="1", help="worker processes per fault run (default 1)")
    p.add_argument("--clean-runs", default="1", help="runs of the unmodified code (false-alarm check, default 1)")
    return parser


def _int_arg(text: str | None, name: str, low: int) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError(f"{name} must be an integer >= {low}, got {text!r}") from None
    if value < low:
        raise UsageError(f"{name} must be an integer >= {low}, got {value}")
    return value


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    from claims.profiles import get_profile
    from claims.registry import all_claims
    from claims.session import estimated_costs

    if args.cost and not args.profile:
        raise UsageError("--cost needs --profile P")
    claims = all_claims(args.registry)  # first: a catalogue may register its own profiles
    profile = get_profile(args.profile) if args.profile else None
    costs = estimated_costs(claims, profile) if (profile is not None and args.cost) else {}
    rows = []
    for claim in claims:
        row = {"id": claim.id, "title": claim.title, "operationalizes": claim.operationalizes,
               "statement": claim.statement, "pass_rule": claim.pass_rule,
               "negative_control": claim.negative_control, "axes": list(claim.axes),
               "declared": dict(claim.declared), "delta": claim.delta,
               "test": claim.plan(profile).to_dict() if profile else None, "precision": claim.precision}
        if profile is not None:
            row["cells"] = len(claim.cells(profile))
        if costs:
            row["cost_s"] = costs[claim.id]
        rows.append(row)
    if args.json:
        out.write(json.dumps(rows, indent=1) + "\n")
        return EXIT_OK
    if not rows:
        out.write("no claims registered\n")
        return EXIT_OK
    for row in rows:
        extra = f"  [{row['cells']} cells under {profile.name}]" if profile else ""
        if costs:
            extra += f"  ~{_duration(row['cost_s'])} on one core"
        out.write(f"{row['id']:<11} {row['title']}{extra}\n")
        out.write(f"{'':<11} {row['statement']}\n")
    if costs:
        total = sum(costs.values())
        out.write(f"total under {profile.name}: ~{_duration(total)} on one core "
                  f"(~{_duration(total / 2)} with 2 workers); estimates from each claim's flop count, "
                  f"calibrated on a 2-core CPU; a run into an existing folder recalibrates from its records\n")
    return EXIT_OK


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class _Progress:
    """Progress on stderr: a tqdm bar on a terminal (cells, cells/s, an ETA weighted by the cost
    estimates); nothing per cell otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar = None

    def __call__(self, event) -> None:
        if event.kind == "start":
            self.stream.write(f"{event.total} cells ({event.resumed} resumed from earlier runs)\n")
            self.stream.flush()
            if self.stream.isatty() and event.total > event.resumed:
                from tqdm import tqdm

                self.bar = tqdm(total=event.total, initial=event.done, file=self.stream, unit="cell",
                                dynamic_ncols=True, bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} "
                                "[{elapsed}, {rate_fmt}{postfix}]")
        elif event.kind == "cell" and self.bar is not None:
            eta = event.eta_s
            self.bar.set_postfix_str(f"ETA {_duration(eta)}" if eta is not None else "", refresh=False)
            self.bar.set_description_str(f"{event.claim}: {event.verdict}", refresh=False)
            self.bar.update(1)
        elif event.kind == "finish" and self.bar is not None:
            self.bar.close()
            self.bar = None


def _cmd_run(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from claims.profiles import get_profile
    from claims.registry import resolve_registry, select_claims
    from claims.scheduling import parse_shard
    from claims.runner import run_profile

    registry = resolve_registry(args.registry)  # first: a catalogue may register its own profiles
    profile = get_profile(args.profile)
    workers = _int_arg(args.workers, "--workers", 1)
    dask_local = _int_arg(args.dask_local, "--dask-local", 1)
    threads = _int_arg(args.threads, "--threads", 1)
    seed = _int_arg(args.seed, "--seed", 0)
    if sum(x is not None for x in (dask_local, args.scheduler)) > 1 or (workers > 1 and (dask_local or args.scheduler)):
        raise UsageError("choose one of --workers N, --dask-local N, --scheduler ADDR")
    if args.scheduler is not None and not args.scheduler.strip():
        raise UsageError("--scheduler must be an address like tcp://HOST:8786")
    scheduler = args.scheduler
    cluster_flags = [f for f, v in (("--tls-ca-file", args.tls_ca_file), ("--tls-cert", args.tls_cert),
                                    ("--tls-key", args.tls_key), ("--allow-mixed-workers", args.allow_mixed_workers))
                     if v]
    if cluster_flags and scheduler is None:
        raise UsageError(f"{cluster_flags[0]} needs --scheduler ADDR")
    if scheduler is not None:
        from claims.remote import Remote

        scheduler = Remote(scheduler.strip(), tls_ca_file=args.tls_ca_file, tls_cert=args.tls_cert,
                           tls_key=args.tls_key, allow_mixed_workers=args.allow_mixed_workers)
    shard = parse_shard(args.shard) if args.shard is not None else None
    selected = select_claims(args.claims, registry)
    summary = run_profile(
        profile, args.out, device=args.device, workers=workers, claims=[c.id for c in selected],
        resume=not args.fresh, progress=_Progress(err), registry=registry, report=not args.no_report,
        seed=seed, dtype=args.dtype, shard=shard, dask_local=dask_local, scheduler=scheduler,
        threads=threads, warn=lambda line: err.write(f"{PROG}: {line}\n"),
    )
    counts = summary.verdict_counts()
    out.write(f"profile {profile.name}, device {summary.device}, {summary.total} cells "
              f"({summary.ran} run, {summary.resumed} resumed), wall {summary.wall_s:.1f} s\n")
    for claim_id, info in summary.meta.get("per_claim", {}).items():
        verdicts = ", ".join(f"{n} {v}" for v, n in info["verdicts"].items() if n)
        out.write(f"  {claim_id:<11} {info['seconds']:8.1f} s  {verdicts}\n")
    out.write(f"results: {summary.results_dir}\n")
    if summary.invalid:
        out.write(f"{len(summary.invalid)} file(s) could not be read and were not counted (named on stderr)\n")
    if summary.interrupted is not None:
        out.write(f"interrupted by signal {summary.interrupted}: finished cells are kept; "
                  f"rerun the same command to resume\n")
        return 128 + int(summary.interrupted)
    code = EXIT_OK
    if summary.report_path is not None:
        out.write(f"report: {summary.report_path}\n")
    elif summary.report_error and not args.no_report:
        err.write(f"{PROG}: error: {summary.report_error}\n")
        code = EXIT_IO
    if counts.get("error"):
        out.write(f"{counts['error']} cell(s) ended in error; see the 'message' field of their records\n")
        code = code or EXIT_FINDINGS
    if args.strict:
        bad = summary.disagreements()
        for r in bad:
            what = "control does not fail" if r.get("expect") == "fails" else "must hold, does not"
            err.write(f"{PROG}: strict: {r['claim']} {r['cell_key']}: {what}: {r['verdict']} ({r.get('reason', '')})\n")
        if bad:
            out.write(f"--strict: {len(bad)} cell(s) disagree with what the suite asserts\n")
            code = code or EXIT_FINDINGS
    return code


def _cmd_report(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from claims.merge import merged_view
    from claims.store import results_dir_of

    view = merged_view(args.results, allow_mixed=args.allow_mixed, registry=args.registry)
    for path, reason in view.invalid:
        err.write(f"{PROG}: could not read {path}: {reason} (not counted)\n")
    compare = None
    if args.compare is not None:
        compare = results_dir_of(args.compare)
        if not compare.is_dir():
            raise UsageError(f"--compare {args.compare!r} has no results folder")
    from reports.build import build_report

    path = build_report(view, Path(args.out), compare_dir=compare, audit=args.audit, registry=args.registry)
    out.write(f"report: {path}\n")
    return EXIT_OK


def _cmd_merge(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from claims.merge import merge_folders

    target, view = merge_folders(args.results, args.out, allow_mixed=args.allow_mixed, registry=args.registry)
    for path, reason in view.invalid:
        err.write(f"{PROG}: could not read {path}: {reason} (not merged)\n")
    out.write(f"merged {len(view.records)} records from {len(args.results)} folder(s) into {target}\n")
    from reports.build import build_report

    out.write(f"report: {build_report(target, Path(args.out), registry=args.registry)}\n")
    return EXIT_OK


def _cmd_reproduce(args: argparse.Namespace, out: TextIO) -> int:
    from claims.reproduce import reproduce

    outcome = reproduce(args.claim_id, args.recipe, args.cell, profile=args.profile, device=args.device,
                        registry=args.registry, dtype=args.dtype, echo=lambda line: out.write(line + "\n"))
    return EXIT_FINDINGS if outcome.ok is False else EXIT_OK


def _cmd_export(args: argparse.Namespace, out: TextIO) -> int:
    from claims.export import export

    if args.format not in ("csv", "parquet"):
        raise UsageError(f"--format must be csv or parquet, got {args.format!r}")
    for path in export(args.results, args.out, fmt=args.format):
        out.write(f"wrote {path}\n")
    return EXIT_OK


def _cmd_audit(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    from claims.audit import run_audit

    workers = _int_arg(args.workers, "--workers", 1)
    clean = _int_arg(args.clean_runs, "--clean-runs", 0)
    result = run_audit(args.profile, args.out, faults=args.faults, claims=args.claims, workers=workers,
                       clean_runs=clean, echo=lambda line: out.write(line + "\n"))
    return EXIT_OK if result.ok else EXIT_FINDINGS


def main(argv: Sequence[str] | None = None, *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Entry point; returns the exit code (see the module docstring)."""
    from claims.store import FolderBusy, WriteError
    from claims.workercheck import MixedWorkers

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
            return _cmd_report(args, out, err)
        if args.command == "merge":
            return _cmd_merge(args, out, err)
        if args.command == "export":
            return _cmd_export(args, out)
        if args.command == "audit":
            return _cmd_audit(args, out, err)
        return _cmd_reproduce(args, out)
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if isinstance(exc.code, int) else 0
    except KeyboardInterrupt:
        err.write(f"{PROG}: interrupted\n")
        return 130
    except MixedWorkers as exc:  # one line per worker that differs
        if debug:
            raise
        err.write("".join(f"{PROG}: error: {line}\n" for line in (exc.headline, *exc.lines)))
        return EXIT_USAGE
    except (WriteError, FolderBusy, MemoryError) as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return EXIT_IO
    except (UsageError, ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return EXIT_USAGE
    except OSError as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: {_one_line(exc)}\n")
        return EXIT_IO
    except Exception as exc:
        if debug:
            raise
        err.write(f"{PROG}: error: unexpected {type(exc).__name__}: {_one_line(exc)} "
                  f"(RNNCLAIMS_DEBUG=1 shows the traceback)\n")
        return EXIT_FINDINGS


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
