"""The suite audits itself: seeded faults in a scratch copy of rnn_core, each judged by a profile's
claims, give the kill matrix (fault x claim: caught / missed) and the mutation score.

A fault is a plausible mistake a researcher makes implementing the paper (a wrong initialization
scale, a wrong activation derivative, a broken backward pass, a wrong constant in the infinite-width
recursion, a regularized solver, a mis-scaled gradient step, inputs read backwards, a wrong empirical
NTK), written as exact text edits of rnn_core's source. For each fault:

1. rnn_core is copied into ``OUT/scratch/<fault>/rnn_core`` and the edits are applied; every edit must
   match its text exactly as many times as it says (else the fault is stale and the audit stops);
2. ``rnnclaims run --profile P --fresh --no-report`` runs in a subprocess whose working folder and
   ``PYTHONPATH`` put the scratch copy first (the subprocess checks that ``rnn_core`` really comes from
   it), with results in ``OUT/runs/<fault>``;
3. a claim *catches* the fault when one of its cells disagrees with what the suite asserts (a must-hold
   cell that does not hold, a control that does not fail) or ends in ``error``; the fault is caught when
   any claim catches it.

The unmodified code runs ``clean_runs`` times with run seeds 0, 1, ... (through the same scratch
mechanism, without edits): every disagreement there is a false alarm. The result is written to
``OUT/audit.json`` and the report of the first clean run, with the kill matrix, to ``OUT/index.html``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from claims.schema import SCHEMA, disagreements
from claims.store import atomic_write_json, load_results

__all__ = ["Fault", "FAULTS", "FaultStale", "AuditResult", "apply_fault", "run_audit"]


class FaultStale(ValueError):
    """A fault's text no longer matches rnn_core (the code moved): the fault must be rewritten."""


@dataclass(frozen=True)
class Fault:
    """One seeded fault: ``edits`` are (file relative to rnn_core/, old text, new text, count)."""

    id: str
    category: str
    description: str
    edits: tuple[tuple[str, str, str, int], ...]

    @property
    def target(self) -> str:
        return ", ".join(sorted({f"rnn_core/{e[0]}" for e in self.edits}))


def _f(id: str, category: str, description: str, *edits: tuple[str, str, str, int]) -> Fault:
    return Fault(id, category, description, tuple(edits))


FAULTS: tuple[Fault, ...] = (
    _f("init-w-var", "initialization", "W ~ N(0, 1/m) instead of N(0, 2/m)",
       ("model.py", "W = _gaussian((m, m), w_std_scale * math.sqrt(2.0 / m), gen, dev, dtype)",
        "W = _gaussian((m, m), w_std_scale * math.sqrt(1.0 / m), gen, dev, dtype)", 1)),
    _f("init-a-var", "initialization", "A ~ N(0, 1/m) instead of N(0, 2/m)",
       ("model.py", "A = _gaussian((m, d), math.sqrt(2.0 / m), gen, dev, dtype)",
        "A = _gaussian((m, d), math.sqrt(1.0 / m), gen, dev, dtype)", 1)),
    _f("init-b-var", "initialization", "B ~ N(0, 4) instead of N(0, 1)",
       ("model.py", "B = _gaussian((m,), 1.0, gen, dev, dtype)", "B = _gaussian((m,), 2.0, gen, dev, dtype)", 1)),
    _f("relu-deriv-one", "activation derivative", "relu'(g) taken as 1 everywhere (the mask D_l is dropped)",
       ("model.py", "return torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=out)",
        "return out.copy_(grad)", 1)),
    _f("leaky-forward", "activation", "the forward pass uses a leaky ReLU (slope 0.2) instead of the ReLU",
       ("model.py", "return x.relu_() if activation == \"relu\" else x.gt_(0)",
        "return x.copy_(torch.nn.functional.leaky_relu(x, 0.2)) if activation == \"relu\" else x.gt_(0)", 1)),
    _f("backward-w-not-transposed", "backward pass", "delta_l = D_l W delta_{l+1} (W instead of W^T)",
       ("model.py", "torch.mm(delta_next, W, out=out)", "torch.mm(delta_next, W.T, out=out)", 1)),
    _f("kernel-kdot-2pi", "infinite-width kernel", "Kdot_l = (pi - theta) / (2 pi) instead of / pi",
       ("kernels.py", "theta.sub_(math.pi).div_(-math.pi)", "theta.sub_(math.pi).div_(-2 * math.pi)", 1)),
    _f("kernel-nngp-sin-2pi", "infinite-width kernel", "K_l with sin(theta) / (2 pi) instead of / pi",
       ("kernels.py", "torch.addcmul(sin.div_(math.pi), theta, c, out=K)",
        "torch.addcmul(sin.div_(2 * math.pi), theta, c, out=K)", 1)),
    _f("kernel-no-half", "infinite-width kernel", "P_l without the factor 1/2 (A_l = Kdot_l (A_{l-1} + K_{l-1}))",
       ("kernels.py", "A.add_(K, alpha=0.5)", "A.add_(K, alpha=1.0)", 1)),
    _f("kernel-input-twice", "infinite-width kernel", "S_l = K_{l-1} + 2 <X_l, X'_l>",
       ("kernels.py", "torch.addmm(K, X[:, l], X2[:, l].T, out=c)", "torch.addmm(K, X[:, l], X2[:, l].T, alpha=2.0, out=c)", 1)),
    _f("solver-ridge", "solver", "kernel solves regularized with a ridge of 1% of the mean diagonal",
       ("linalg.py", "self.j = _rel_jitter(rel_jitter) * max(float(torch.diagonal(H).sum()), 0.0) / n",
        "self.j = max(_rel_jitter(rel_jitter), 1e-2) * max(float(torch.diagonal(H).sum()), 0.0) / n", 1)),
    _f("train-eta-x10", "training step", "gradient step 10 eta",
       ("train.py", "W.addmm_(delta_rows.T, h_prev_rows, alpha=-eta)",
        "W.addmm_(delta_rows.T, h_prev_rows, alpha=-10 * eta)", 1)),
    _f("train-eta-x0.1", "training step", "gradient step eta / 10",
       ("train.py", "W.addmm_(delta_rows.T, h_prev_rows, alpha=-eta)",
        "W.addmm_(delta_rows.T, h_prev_rows, alpha=-0.1 * eta)", 1)),
    _f("train-uncentered", "training step", "training fits f(W, x) instead of the centered f(W, x) - f(W_0, x)",
       ("train.py", "r = _forward_into(cur, X, run).sub_(f0).sub_(yt)", "r = _forward_into(cur, X, run).sub_(yt)", 1)),
    _f("input-reversed", "input handling", "the RNN reads every sequence backwards (X_L first)",
       ("model.py", "    n, L, d = X.shape\n    w_steps = L - 1", "    X = X.flip(1)\n    n, L, d = X.shape\n    w_steps = L - 1", 1)),
    _f("ntk-no-cross-time", "empirical NTK", "H_m keeps only the l = l' terms (cross-time terms dropped)",
       ("ntk.py",
        "H[a:a1, b:b1] = gram_deltas.view(shape[0], b1 - b, w_steps).sum(dim=2).view(a1 - a, w_steps, b1 - b).sum(dim=1)",
        "H[a:a1, b:b1] = torch.diagonal(gram_deltas.view(a1 - a, w_steps, b1 - b, w_steps), dim1=1, dim2=3).sum(dim=2)",
        1)),
    _f("ntk-half-normalization", "empirical NTK", "H_m normalized by 2/m instead of 1/m",
       ("ntk.py", "return H.div_(m)", "return H.div_(m / 2)", 1)),
)


def _core_source() -> Path:
    import rnn_core

    return Path(rnn_core.__file__).resolve().parent


def apply_fault(fault: Fault | None, scratch: Path) -> Path:
    """Copy rnn_core into ``scratch/rnn_core`` with ``fault``'s edits (None: unmodified); returns
    ``scratch``. Raises :class:`FaultStale` when an edit's text is not found exactly as often as stated."""
    target = scratch / "rnn_core"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(_core_source(), target, ignore=shutil.ignore_patterns("__pycache__"))
    for file, old, new, count in (fault.edits if fault else ()):
        path = target / file
        text = path.read_text(encoding="utf-8")
        found = text.count(old)
        if found != count:
            raise FaultStale(f"fault {fault.id}: rnn_core/{file} has {found} occurrence(s) of {old!r}, expected "
                             f"{count}; rewrite the fault for the current code")
        path.write_text(text.replace(old, new), encoding="utf-8")
    return scratch


_WRAPPER = (
    "import sys, rnn_core, pathlib\n"
    "where = pathlib.Path(rnn_core.__file__).resolve()\n"
    "if not str(where).startswith(sys.argv[1]):\n"
    "    sys.exit(f'rnnclaims audit: rnn_core imported from {where}, not from the scratch copy {sys.argv[1]}')\n"
    "from claims.cli import main\n"
    "sys.exit(main(sys.argv[2:]))\n"
)


def _run_claims(scratch: Path, out: Path, profile: str, claims: str | None, workers: int, seed: int,
                timeout: float | None) -> tuple[int, str]:
    argv = ["run", "--profile", profile, "--out", str(out), "--fresh", "--no-report", "--workers", str(workers),
            "--seed", str(seed)]
    if claims:
        argv += ["--claims", claims]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(scratch), *(p for p in [env.get("PYTHONPATH")] if p)])
    proc = subprocess.run([sys.executable, "-c", _WRAPPER, str(scratch.resolve()), *argv], cwd=scratch, env=env,
                          capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stderr


@dataclass
class AuditResult:
    """What :func:`run_audit` found; ``ok`` when every fault was caught and no clean run alarmed."""

    data: dict
    path: Path
    report: Path | None = None
    missed: list[str] = field(default_factory=list)
    false_alarms: int = 0

    @property
    def ok(self) -> bool:
        return not self.missed and self.false_alarms == 0


def _changes(records: list[dict]) -> list[dict]:
    bad = disagreements(records) + [r for r in records if r.get("verdict") == "error"]
    return [{"claim": r["claim"], "cell_key": r["cell_key"], "expect": r.get("expect"), "verdict": r["verdict"],
             "reason": r.get("reason", "")} for r in bad]


def _select(faults: str | Iterable[str] | None) -> list[Fault]:
    if faults is None:
        return list(FAULTS)
    ids = [f.strip() for f in (faults.split(",") if isinstance(faults, str) else faults) if f.strip()]
    known = {f.id: f for f in FAULTS}
    unknown = [f for f in ids if f not in known]
    if unknown or not ids:
        raise ValueError(f"unknown fault(s) {', '.join(unknown) or '(none given)'}; known: {', '.join(known)}")
    return [known[f] for f in ids]


def run_audit(profile: str, out: str | os.PathLike, *, faults: str | Iterable[str] | None = None,
              claims: str | None = None, workers: int = 1, clean_runs: int = 1,
              echo: Callable[[str], None] = print, timeout: float | None = None) -> AuditResult:
    """Run the audit (see the module docstring) and write ``OUT/audit.json`` and ``OUT/index.html``."""
    from claims.profiles import get_profile
    from claims.registry import resolve_registry, select_claims

    prof = get_profile(profile)
    chosen = _select(faults)
    claim_ids = [c.id for c in select_claims(claims, resolve_registry())]
    out = Path(out).resolve()  # the runs start in the scratch copies: a relative OUT would land there
    out.mkdir(parents=True, exist_ok=True)
    for fault in chosen:  # stale faults stop the audit before any run
        apply_fault(fault, out / "scratch" / fault.id)

    def judge(label: str, fault: Fault | None, seed: int) -> tuple[list[dict], float, Path]:
        scratch = apply_fault(fault, out / "scratch" / label)
        runs = out / "runs" / label
        t0 = time.perf_counter()
        code, err = _run_claims(scratch, runs, prof.name, ",".join(claim_ids), workers, seed, timeout)
        wall = time.perf_counter() - t0
        if code not in (0, 1):
            raise RuntimeError(f"audit run {label} failed (exit {code}): {err.strip()[-500:]}")
        return load_results(runs).records, wall, runs

    clean = []
    first_clean: Path | None = None
    for i in range(clean_runs):
        records, wall, runs = judge(f"clean-{i}", None, seed=i)
        first_clean = first_clean or runs
        alarms = _changes(records)
        clean.append({"run": i, "seed": i, "false_alarms": alarms, "wall_s": wall, "cells": len(records)})
        echo(f"clean run {i} (seed {i}): {len(records)} cells, {len(alarms)} false alarm(s), {wall:.0f} s")
    entries, matrix = [], {}
    for fault in chosen:
        records, wall, _ = judge(fault.id, fault, seed=0)
        changes = _changes(records)
        row = {cid: "missed" for cid in claim_ids}
        for ch in changes:
            row[ch["claim"]] = "error" if ch["verdict"] == "error" and row[ch["claim"]] != "caught" else "caught"
        caught_by = [c for c, v in row.items() if v != "missed"]
        matrix[fault.id] = row
        entries.append({"id": fault.id, "category": fault.category, "description": fault.description,
                        "target": fault.target, "caught": bool(caught_by), "caught_by": caught_by,
                        "changes": changes, "wall_s": wall, "invisible_at": None})
        echo(f"{fault.id:<26} {'caught by ' + ', '.join(caught_by) if caught_by else 'MISSED'} ({wall:.0f} s)")
    caught = sum(e["caught"] for e in entries)
    data = {"schema": SCHEMA, "kind": "audit", "profile": prof.name, "claims": claim_ids, "faults": entries,
            "clean": clean, "score": caught / len(entries) if entries else None, "matrix": matrix}
    path = atomic_write_json(out / "audit.json", data)
    result = AuditResult(data, path, missed=[e["id"] for e in entries if not e["caught"]],
                         false_alarms=sum(len(c["false_alarms"]) for c in clean))
    echo(f"mutation score {caught}/{len(entries)}; false alarms in {clean_runs} clean run(s): {result.false_alarms}")
    if first_clean is not None:
        from reports.build import build_report

        result.report = build_report(first_clean, out, audit=data)
        echo(f"report: {result.report}")
    return result
