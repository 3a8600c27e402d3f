"""Build the self-contained HTML report from stored results.

``build_report(source, out_dir, compare_dir=None, audit=None)``: ``source`` is a results folder (a run's
``OUT`` or ``OUT/results``), or a :class:`claims.merge.ResultView` (several shard folders merged by
:func:`claims.merge.merged_view`). Files that could not be used (``view.invalid``) are listed on the page
with their reason and never counted. ``compare_dir`` adds the comparison with a second run (flipped cells
first); ``audit`` (a dict, or the path of the ``audit.json`` that ``rnnclaims audit`` writes) adds the kill
matrix of seeded faults. Writes ``out_dir/results.json`` (every stored record, the run metadata, the
files that could not be read and the audit, in one bundle) and ``out_dir/index.html`` with the one
atomic writer (:func:`claims.store.atomic_write_text`; a failure raises
:class:`claims.store.WriteError` naming the path), after removing temporary files that killed builds
left behind; returns the path of ``index.html``.

The page has no external references: CSS and a small check script are inline, figures are inline SVG;
it links to ``results.json`` and to the raw record files by relative paths. Every string that comes from
a record, the run metadata or the audit is HTML-escaped by the template engine.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import pathlib
import shlex
from collections import Counter
from typing import Any

import jinja2

from claims.merge import ResultView
from claims.schema import SCHEMA, VERDICTS, order_claims
from claims.store import WriteError, atomic_write_json, atomic_write_text, read_json, remove_stale_temps
from claims import verdict as _verdict
from claims.export import THRESHOLD_STATUSES
from claims.verdict import TestPlan

from . import analysis as an
from .compare import as_view, compare_views
from .figures import claim_figures

__all__ = ["build_report", "load_audit"]

TEMPLATES = pathlib.Path(__file__).with_name("templates")

VERDICT_SYMBOL = {"holds": "✓", "fails": "✗", "inconclusive": "?", "skipped": "–", "error": "!"}

AUDIT_STATES = {"caught": "✓", "missed": "·", "error": "!"}


# --------------------------------------------------------------------------------------------------
# the claims registry (optional: the report builds without torch)


def _registry(registry: Any = None) -> tuple[Any | None, str | None]:
    """The claims registry when importable, else (None, why)."""
    try:
        from claims.registry import resolve_registry

        return resolve_registry(registry), None
    except Exception as exc:  # torch missing, a broken third-party catalogue, ...
        return None, f"{type(exc).__name__}: {exc}"


def _claim_of(reg: Any, claim_id: str) -> Any | None:
    if reg is None:
        return None
    try:
        return reg.get(claim_id)
    except Exception:
        return None


_PROSE = ("operationalizes", "statement", "pass_rule", "negative_control", "expected")


def _claim_meta(claim_id: str, records: list[dict], claim: Any | None) -> dict:
    """Title from the records (each carries its claim's title), else the registry, else the id; the
    other prose from the registry when the claim is there."""
    title = next((r["title"] for r in records if isinstance(r.get("title"), str) and r["title"]), None)
    meta = {k: "" for k in _PROSE}
    if claim is not None:
        title = title or getattr(claim, "title", None)
        for k in _PROSE:
            v = getattr(claim, k, None)
            if isinstance(v, str):
                meta[k] = v
    meta["title"] = title or claim_id
    meta["source"] = "registry" if claim is not None else "records"
    return meta


# --------------------------------------------------------------------------------------------------
# formatting


def fmt_num(x: Any, digits: int = 3) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return str(x)
    if isinstance(x, int):
        return str(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return str(x)
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "∞" if f > 0 else "−∞"
    return f"{f:.{digits}g}"


def fmt_ci(ci) -> str:
    if not ci:
        return "—"
    return f"[{fmt_num(ci[0], 2)}, {fmt_num(ci[1], 2)}]"


def fmt_measured(measured: dict) -> list[tuple[str, str]]:
    out = []
    for k, v in sorted(measured.items()):
        if isinstance(v, dict):
            out.append((k, ", ".join(f"{s} {fmt_num(x)}" for s, x in v.items())))
        else:
            out.append((k, fmt_num(v)))
    return out


def test_short(test: dict) -> str:
    """"SPRT δ=0.1 δ₁=0.3 α=0.05 β=0.05" for one cell's ``test``."""
    if not test:
        return "—"
    return (f"{test.get('test', '?')} δ={fmt_num(test.get('delta'))} δ₁={fmt_num(test.get('delta_1'))} "
            f"α={fmt_num(test.get('alpha'))} β={fmt_num(test.get('beta'))}")


def test_text(test: dict) -> str:
    """The sequential test of a claim's cells in words, with the examples that decide it fastest."""
    text = (f"{test.get('test', '?')}: H0 p ≤ {fmt_num(test.get('delta'))} against H1 p ≥ "
            f"{fmt_num(test.get('delta_1'))}, α = {fmt_num(test.get('alpha'))}, β = {fmt_num(test.get('beta'))}, "
            f"budget {fmt_num(test.get('budget'))} examples per cell")
    try:
        plan = TestPlan(float(test["delta"]), float(test["delta_1"]), float(test["alpha"]), float(test["beta"]),
                        int(test["budget"]))
    except Exception:
        return text
    return (text + f" (holds after {plan.min_examples_to_hold()} passing examples in a row, fails after "
            f"{plan.min_examples_to_fail()} failing ones in a row, stops inconclusive after the first "
            f"{plan.futility} if all of them are inconclusive)")


def reproduce_command(rec: dict) -> str | None:
    recipe = rec.get("failing_recipe")
    if not recipe:
        return None
    recipe_json = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    # a threshold cell's failing example ran in one concrete (m, L) cell, which it stores
    cell = rec.get("failing_cell") if isinstance(rec.get("failing_cell"), dict) else rec["params"]
    cell_json = json.dumps(cell, sort_keys=True, separators=(",", ":"))
    cmd = (f"rnnclaims reproduce {shlex.quote(rec['claim'])} --recipe {shlex.quote(recipe_json)} "
           f"--cell {shlex.quote(cell_json)}")
    if isinstance(rec.get("profile"), str) and rec["profile"]:
        cmd += f" --profile {shlex.quote(rec['profile'])}"
    if rec.get("dtype") == "float64":
        cmd += " --dtype float64"
    return cmd


def cell_title(r: dict) -> str:
    """Hover text of a phase-diagram cell: the cell, what is expected, why the test stopped."""
    st = r["_status"]
    lines = [r["cell_key"], st.expectation, f"verdict: {r['verdict']}" + (f" ({st.text})" if st.text != r["verdict"] else "")]
    if r.get("reason"):
        lines.append(f"stopped: {r['reason']}")
    lines.append(f"test: {test_short(r['test'])}; examples {r['examples']} of {fmt_num(r['test'].get('budget'))}")
    if r.get("dtype"):
        lines.append(f"dtype {r['dtype']}")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------------
# provenance


def _first(records: list[dict], key: str):
    for r in records:
        if r.get(key):
            return r[key]
    return None


def _workers(run: dict, records: list[dict]) -> list[dict]:
    """Distinct workers (host, pid, threads, device) with the number of sittings / cells they served."""
    seen: Counter = Counter()
    rows: dict[tuple, dict] = {}
    for w in [*(run.get("workers") or []), *([] if run.get("workers") else [r.get("worker") for r in records])]:
        if not isinstance(w, dict):
            continue
        key = tuple(str(w.get(k)) for k in ("host", "pid", "threads", "device"))
        seen[key] += 1
        rows.setdefault(key, {k: w.get(k) for k in ("host", "pid", "threads", "device")})
    return [dict(rows[k], count=seen[k]) for k in rows]


def _shard_text(shard: Any) -> str:
    if isinstance(shard, (list, tuple)) and len(shard) == 2:
        return f"{shard[0]}/{shard[1]}"
    return "whole run" if shard is None else str(shard)


def _shards(run: dict) -> dict:
    """Which shards the results hold and whether they cover the run."""
    merged = run.get("source") == "rnnclaims merge"
    raw = run.get("shards") or []
    rows, ids = [], []
    for s in raw:
        if isinstance(s, dict):  # a merged view: one entry per folder
            rows.append({"folder": s.get("folder"), "shard": _shard_text(s.get("shard")), "wall_s": s.get("wall_s"),
                         "cells": s.get("cells_on_disk"), "complete": s.get("complete"),
                         "interrupted": s.get("interrupted"), "executor": _executor_text(s.get("executor"))})
            if isinstance(s.get("shard"), (list, tuple)) and len(s["shard"]) == 2:
                ids.append(tuple(s["shard"]))
        elif isinstance(s, (list, tuple)) and len(s) == 2:  # one folder: the shards its sittings ran
            ids.append(tuple(s))
    if isinstance(run.get("shard"), (list, tuple)) and len(run["shard"]) == 2:
        ids.append(tuple(run["shard"]))
    ids = sorted(set(ids))
    missing: list[str] = []
    totals = {n for _, n in ids}
    if len(totals) == 1:
        n = next(iter(totals))
        missing = [f"{i}/{n}" for i in range(1, n + 1) if (i, n) not in ids]
    if "shards_cover_run" in run:
        covers = bool(run["shards_cover_run"])
    elif ids:
        covers = len(totals) == 1 and not missing
    else:
        covers = None  # not a sharded run
    return {"merged": merged, "rows": rows, "ids": [f"{i}/{n}" for i, n in ids], "covers": covers,
            "missing": missing, "mixed_totals": len(totals) > 1}


def _executor_text(ex: Any) -> str:
    if not isinstance(ex, dict):
        return "—" if ex is None else str(ex)
    parts = [str(ex.get("kind", "?"))]
    if ex.get("workers") is not None:
        parts.append(f"{ex['workers']} worker{'s' if ex['workers'] != 1 else ''}")
    for k, v in ex.items():
        if k not in ("kind", "workers") and v not in (None, "", [], {}):
            parts.append(f"{k} {v}")
    return ", ".join(parts)


_SHOWN_RUN_KEYS = {
    "schema", "source", "profile", "profile_settings", "seed", "dtype", "claims", "executor", "workers", "shard",
    "shards", "shards_cover_run", "started", "finished", "wall_s", "cpu_s", "per_claim", "per_claim_wall_s",
    "cells_total", "cells_on_disk", "cells_run", "cells_resumed", "verdicts", "interrupted", "signal",
    "complete", "versions", "git_commit", "sittings",
}


def _provenance(view: ResultView, records: list[dict], by_claim: dict[str, list[dict]]) -> dict:
    run = view.run or {}
    raw = view.records
    versions = run.get("versions") if isinstance(run.get("versions"), dict) else (_first(raw, "versions") or {})
    per_claim = []
    run_pc = run.get("per_claim") if isinstance(run.get("per_claim"), dict) else {}
    for cid, recs in by_claim.items():
        durations = [an.num(r.get("duration_s")) for r in recs]
        costs = [an.num(r.get("cost")) for r in recs]
        info = run_pc.get(cid) if isinstance(run_pc.get(cid), dict) else {}
        per_claim.append({
            "claim": cid, "cells": len(recs),
            "seconds": sum(d for d in durations if math.isfinite(d)),
            "run_seconds": info.get("seconds"),
            "cost": sum(c for c in costs if math.isfinite(c)) if any(math.isfinite(c) for c in costs) else None,
            "examples": sum(r["examples"] for r in recs),
        })
    devices = sorted({str(r.get("device")) for r in raw if r.get("device")})
    dtypes = sorted({str(r.get("dtype")) for r in raw if r.get("dtype")})
    seeds = sorted({r.get("seed") for r in raw if r.get("seed") is not None}, key=str)
    sittings = []
    for s in run.get("sittings") or []:
        if isinstance(s, dict):
            sittings.append({"started": s.get("started"), "finished": s.get("finished"), "wall_s": s.get("wall_s"),
                             "cells_run": s.get("cells_run"), "cells_resumed": s.get("cells_resumed"),
                             "shard": _shard_text(s.get("shard")), "executor": _executor_text(s.get("executor")),
                             "interrupted": bool(s.get("interrupted")), "source": s.get("source")})
    return {
        "run_present": bool(run),
        "source": run.get("source"),
        "profile": run.get("profile") or _first(raw, "profile"),
        "seed": run.get("seed") if run.get("seed") is not None else (seeds[0] if len(seeds) == 1 else seeds or None),
        "dtype_policy": run.get("dtype"),
        "dtypes": dtypes,
        "devices": devices,
        "git_commit": run.get("git_commit") or _first(raw, "git_commit"),
        "versions": versions,
        "start": run.get("started") or min((str(r["started"]) for r in raw if r.get("started")), default=None),
        "end": run.get("finished"),
        "wall_s": run.get("wall_s"),
        "cpu_s": run.get("cpu_s"),
        "complete": run.get("complete"),
        "interrupted": run.get("interrupted"),
        "signal": run.get("signal"),
        "cells_total": run.get("cells_total"),
        "cells_on_disk": run.get("cells_on_disk"),
        "cells_run": run.get("cells_run"),
        "cells_resumed": run.get("cells_resumed"),
        "n_records": len(raw),
        "executor": _executor_text(run.get("executor")) if run.get("executor") is not None else None,
        "workers": _workers(run, raw),
        "sittings": sittings,
        "shards": _shards(run),
        "per_claim": per_claim,
        "roots": [str(r) for r in view.roots],
        "profile_settings": run.get("profile_settings"),
        "run_extra": {k: v for k, v in run.items() if k not in _SHOWN_RUN_KEYS},
    }


# --------------------------------------------------------------------------------------------------
# the audit (kill matrix)


def load_audit(audit: Any) -> tuple[dict | None, list[tuple[str, str]]]:
    """The audit as a dict, or (None, [(where, why)]) when it cannot be used. ``audit`` is a dict or the
    path of ``audit.json`` (``{"schema": 2, "kind": "audit", "faults": [...], ...}``)."""
    where = "audit"
    if isinstance(audit, (str, os.PathLike)):
        where = str(audit)
        try:
            audit = read_json(audit)
        except FileNotFoundError:
            return None, [(where, "missing")]
        except (OSError, ValueError) as exc:
            return None, [(where, f"unreadable: {type(exc).__name__}: {exc}")]
    if not isinstance(audit, dict):
        return None, [(where, f"not a JSON object ({type(audit).__name__})")]
    if audit.get("kind") != "audit":
        return None, [(where, f"kind {audit.get('kind')!r} is not 'audit'")]
    if audit.get("schema") != SCHEMA:
        return None, [(where, f"schema {audit.get('schema')!r} is not {SCHEMA}, the schema this version reads")]
    if not isinstance(audit.get("faults"), list) or not all(isinstance(f, dict) and f.get("id") for f in audit["faults"]):
        return None, [(where, "'faults' must be a list of objects with an 'id'")]
    return audit, []


def _audit_view(audit: dict) -> dict:
    matrix = audit.get("matrix") if isinstance(audit.get("matrix"), dict) else {}
    claim_ids = [c for c in audit.get("claims") or [] if isinstance(c, str)]
    if not claim_ids:
        claim_ids = order_claims({c for row in matrix.values() if isinstance(row, dict) for c in row})
    faults = []
    for f in audit["faults"]:
        fid = str(f["id"])
        row = matrix.get(fid) if isinstance(matrix.get(fid), dict) else {}
        changes = [c for c in f.get("changes") or [] if isinstance(c, dict)]
        caught_by = [str(c) for c in f.get("caught_by") or []]
        cells = []
        for cid in claim_ids:
            state = row.get(cid)
            if state is None:
                state = "caught" if cid in caught_by else "n/a"
            state = str(state)
            mine = [c for c in changes if c.get("claim") == cid]
            lines = [f"{c.get('cell_key')}: expect {c.get('expect')} → {c.get('verdict')}"
                     + (f" ({c['reason']})" if c.get("reason") else "") for c in mine[:12]]
            if len(mine) > 12:
                lines.append(f"... {len(mine) - 12} more")
            title = f"{fid} × {cid}: {state}" + ("\n" + "\n".join(lines) if lines else "")
            cells.append({"claim": cid, "state": state, "symbol": AUDIT_STATES.get(state, "–"),
                          "cls": state if state in AUDIT_STATES else "other", "title": title,
                          "n_changes": len(mine)})
        caught = f.get("caught")
        if caught is None:
            caught = any(c["state"] == "caught" for c in cells)
        faults.append({"id": fid, "category": f.get("category"), "description": f.get("description"),
                       "target": f.get("target"), "caught": bool(caught), "caught_by": caught_by,
                       "wall_s": f.get("wall_s"), "invisible_at": f.get("invisible_at"), "changes": changes,
                       "cells": cells})
    n_caught = sum(f["caught"] for f in faults)
    clean = []
    for c in audit.get("clean") or []:
        if isinstance(c, dict):
            alarms = [a for a in c.get("false_alarms") or [] if isinstance(a, dict)]
            clean.append({"run": c.get("run"), "seed": c.get("seed"), "wall_s": c.get("wall_s"), "false_alarms": alarms})
    score = audit.get("score")
    try:
        score = float(score) if score is not None else (n_caught / len(faults) if faults else None)
    except (TypeError, ValueError):
        score = None
    return {
        "profile": audit.get("profile"), "claims": claim_ids, "faults": faults, "n_caught": n_caught,
        "n_faults": len(faults), "score": score, "invisible": [f for f in faults if f["invisible_at"]],
        "missed": [f for f in faults if not f["caught"]], "clean": clean,
        "false_alarms": sum(len(c["false_alarms"]) for c in clean),
    }


# --------------------------------------------------------------------------------------------------
# the page


def _relative_link(target: pathlib.Path, out_dir: pathlib.Path) -> str:
    try:
        return pathlib.Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()
    except ValueError:  # different drives (Windows): fall back to the bundle
        return "results.json"


def _record_link(r: dict, roots: list[pathlib.Path], out: pathlib.Path) -> str:
    """The stored file of a record (the first folder that holds it: the one a merge kept)."""
    for root in roots:
        path = root / r["claim"] / f"{r['cell_key']}.json"
        if path.is_file():
            return _relative_link(path, out)
    return "results.json"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_num
    env.filters["ci"] = fmt_ci
    env.filters["pretty"] = lambda obj: json.dumps(obj, indent=2, sort_keys=True, default=str)
    env.filters["test_short"] = test_short
    env.globals["VERDICT_SYMBOL"] = VERDICT_SYMBOL
    env.globals["extra_label"] = an.extra_label
    env.globals["describe_fit"] = an.describe_fit
    env.globals["cell_title"] = cell_title
    env.globals["test_text"] = test_text
    env.globals["anchor"] = _anchor
    env.globals["cell_label"] = an.cell_label
    env.filters["width"] = an.fmt_width
    return env


def _anchor(prefix: str, text: str) -> str:
    return prefix + "".join(ch if ch.isalnum() else "-" for ch in text)


def _constants(recs: list[dict]) -> list[dict]:
    """Declared constants against the worst measured constant over non-control cells."""
    declared: dict[str, float] = {}
    measured: dict[str, list[float]] = {}
    for r in recs:
        if r["control"]:
            continue
        for k, v in r["declared_constants"].items():
            declared.setdefault(k, v)
        for k, v in r["measured_constants"].items():
            x = an.num(v.get("max") if isinstance(v, dict) else v)
            if math.isfinite(x):
                measured.setdefault(k, []).append(x)
    keys = sorted(set(declared) | set(measured))
    return [{"name": k, "declared": declared.get(k), "worst": max(measured[k]) if measured.get(k) else None,
             "best": min(measured[k]) if measured.get(k) else None} for k in keys]


def build_report(source: str | os.PathLike | ResultView, out_dir: str | os.PathLike,
                 compare_dir: str | os.PathLike | ResultView | None = None, audit: Any = None, *,
                 registry: Any = None) -> pathlib.Path:
    """Write ``out_dir/index.html`` and ``out_dir/results.json`` (see the module docstring); return the
    HTML path. ``registry`` names the claims registry (default: the one ``rnnclaims`` uses); when it
    cannot be imported the report still builds, with titles from the records and generic figures."""
    out = pathlib.Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WriteError(exc.errno, f"cannot create the report folder {out}: {exc.strerror or exc}") from exc
    remove_stale_temps(out)

    reg, registry_problem = _registry(registry)
    view = as_view(source, registry=reg)
    records = [an.normalize_record(r) for r in view.records]
    by_claim = an.records_by_claim(records, view.run)
    prov = _provenance(view, records, by_claim)
    profile = str(prov["profile"] or "unknown")

    invalid = [{"path": str(p), "reason": why, "what": "results"} for p, why in view.invalid]

    changes = None
    compare_label = ""
    if compare_dir is not None:
        view_b = as_view(compare_dir, registry=reg)
        invalid += [{"path": str(p), "reason": why, "what": "comparison run B"} for p, why in view_b.invalid]
        changes = compare_views(view, view_b)
        compare_label = ", ".join(str(r) for r in view_b.roots) or str(compare_dir)

    audit_data, audit_problems = (None, [])
    if audit is not None:
        audit_data, audit_problems = load_audit(audit)
        invalid += [{"path": where, "reason": why, "what": "audit"} for where, why in audit_problems]

    atomic_write_json(out / "results.json", {
        "schema": SCHEMA, "run": view.run, "records": view.records,
        "invalid": [{"path": str(p), "reason": why} for p, why in view.invalid],
        "audit": audit_data,
    })

    claims = []
    for cid, recs in by_claim.items():
        claim_obj = _claim_of(reg, cid)
        summ = an.summarize_claim(cid, recs)
        figs, notes = claim_figures(cid, recs, profile, claim_obj)
        for r in recs:
            r["_link"] = _record_link(r, view.roots, out)
        failing = []
        for r in sorted(recs, key=lambda r: r["cell_key"]):
            if r["control"] or r["verdict"] != "fails":
                continue
            failing.append({"rec": r, "measured": fmt_measured(r["measured"]), "command": reproduce_command(r)})
        thresholds = [{"L": L, "pooled": t, "regimes": {g: summ.thresholds_by_regime[g].get(L)
                                                        for g in summ.thresholds_by_regime}}
                      for L, t in summ.thresholds.items()]
        claims.append({
            "id": cid, "anchor": _anchor("claim-", cid), "meta": _claim_meta(cid, recs, claim_obj), "s": summ,
            "figs": figs, "notes": notes, "panels": an.phase_panels(recs), "failing": failing,
            "thresholds": thresholds, "constants": _constants(recs),
        })

    all_disagreements = [r for c in claims for r in c["s"].disagreements]
    matrix_Ls, matrix_rows = an.threshold_matrix(by_claim)
    html = _env().get_template("report.html.j2").render(
        claims=claims, prov=prov, profile=profile, invalid=invalid,
        matrix_Ls=matrix_Ls, matrix_rows=matrix_rows, growth=an.growth_table(by_claim),
        threshold_statuses=THRESHOLD_STATUSES,
        results_roots=[{"path": str(r), "link": _relative_link(r, out)} for r in view.roots],
        verdict_rule=_verdict.RULE, registry_problem=registry_problem,
        changes=changes, compare_a=", ".join(str(r) for r in view.roots), compare_b=compare_label,
        audit=_audit_view(audit_data) if audit_data is not None else None, audit_requested=audit is not None,
        disagreements=all_disagreements,
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        n_records=len(records), verdicts=VERDICTS,
    )
    index = out / "index.html"
    atomic_write_text(index, html)
    return index
