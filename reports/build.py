"""Build the self-contained HTML report from a results folder.

``build_report(results_dir, out_dir, compare_dir=None)`` reads the per-cell JSON records
(``<CLAIM>/<cell_key>.json``) and ``_run.json`` of ``results_dir``, writes ``results.json`` (every raw
record plus the run metadata, one bundle) and ``index.html`` into ``out_dir`` (atomically: a temporary
file then ``os.replace``), and returns the path of ``index.html``. The page has no external references:
CSS and a small check script are inline, figures are inline SVG; it links to ``results.json`` and to the
raw record files by relative paths.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import pathlib
import shlex
import tempfile
from typing import Any

import jinja2

from . import analysis as an
from .compare import compare_results
from .figures import claim_figures

__all__ = ["build_report"]

TEMPLATES = pathlib.Path(__file__).with_name("templates")

VERDICT_STYLE = {  # Okabe-Ito colours; the text and symbol carry the same information
    "holds": ("✓", "holds"),
    "fails": ("✗", "fails"),
    "inconclusive": ("?", "inconclusive"),
    "skipped": ("–", "skipped"),
    "error": ("!", "error"),
}

FALLBACK_VERDICT_RULE = (
    "Per cell, K examples with F failures (inconclusive examples excluded from K). With the one-sided 95% "
    "Clopper-Pearson bounds [lo, hi] on the failure rate: fails if lo > delta; holds if F/K <= delta and "
    "hi <= 0.5; inconclusive otherwise, or when every example was inconclusive; skipped when the memory "
    "guard or the profile rules the cell out; error when evaluation raised. (claims.verdict was not "
    "importable; this is the rule of docs/ARCHITECTURE.md.)"
)


def _claim_meta(claim_id: str) -> dict:
    """Title and texts from the claims registry when importable, else the SPEC fallback."""
    title, oper = an.FALLBACK_META.get(claim_id, (claim_id, ""))
    meta = {"title": title, "operationalizes": oper, "statement": "", "pass_rule": "",
            "negative_control": "", "expected": "", "source": "fallback"}
    try:
        from claims.registry import get_claim  # type: ignore

        c = get_claim(claim_id)
        for k in ("title", "operationalizes", "statement", "pass_rule", "negative_control", "expected"):
            v = getattr(c, k, None)
            if isinstance(v, str) and v:
                meta[k] = v
        meta["source"] = "registry"
    except Exception:  # the registry may be absent or broken; the report still builds
        pass
    return meta


def _verdict_rule() -> str:
    try:
        import claims.verdict as v  # type: ignore

        if v.__doc__ and v.__doc__.strip():
            return v.__doc__.strip()
    except Exception:
        pass
    return FALLBACK_VERDICT_RULE


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


def reproduce_command(rec: dict) -> str | None:
    recipe = rec.get("failing_recipe")
    if not recipe:
        return None
    recipe_json = json.dumps(recipe, sort_keys=True, separators=(",", ":"))
    cell_json = json.dumps(rec["params"], sort_keys=True, separators=(",", ":"))
    cmd = (f"rnnclaims reproduce {shlex.quote(rec['claim'])} --recipe {shlex.quote(recipe_json)} "
           f"--cell {shlex.quote(cell_json)}")
    if isinstance(rec.get("profile"), str) and rec["profile"]:
        cmd += f" --profile {shlex.quote(rec['profile'])}"
    return cmd


def _provenance(rs: an.ResultSet) -> dict:
    run = rs.run or {}
    recs = rs.records

    def first(key):
        for r in recs:
            if r.get(key):
                return r[key]
        return None

    versions = run.get("versions") if isinstance(run.get("versions"), dict) else (first("versions") or {})
    per_claim_run = run.get("per_claim_wall_s") or run.get("per_claim") or run.get("claim_wall_s") or {}
    per_claim = {}
    for c, rs_c in rs.by_claim().items():
        from_run = per_claim_run.get(c) if isinstance(per_claim_run, dict) else None
        summed = sum(an._num(r.get("duration_s")) for r in rs_c if math.isfinite(an._num(r.get("duration_s"))))
        per_claim[c] = (from_run, summed)
    starts = sorted(str(r["started"]) for r in recs if r.get("started"))
    seeds = run.get("seeds")
    if seeds is None:
        seed_set = {json.dumps(r["seeds"], sort_keys=True) for r in recs if r.get("seeds")}
        seeds = f"{len(seed_set)} distinct per-cell seed sets (see the records)" if seed_set else None
    return {
        "device": run.get("device") or first("device"),
        "versions": versions,
        "git_commit": run.get("git_commit") or run.get("commit") or first("git_commit"),
        "profile": run.get("profile") or first("profile"),
        "seeds": seeds,
        "start": run.get("start") or run.get("started") or (starts[0] if starts else None),
        "end": run.get("end") or run.get("finished"),
        "wall_s": run.get("wall_s") or run.get("wall_time_s"),
        "per_claim": per_claim,
        "run_present": rs.run is not None,
        "run_extra": {k: v for k, v in run.items() if k not in {
            "versions", "per_claim_wall_s", "per_claim", "claim_wall_s", "device", "git_commit", "commit",
            "profile", "seeds", "start", "started", "end", "finished", "wall_s", "wall_time_s"}},
    }


def _json_safe(obj):
    """NaN / inf -> None so that results.json is strict JSON."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    return obj


def _relative_link(target: pathlib.Path, out_dir: pathlib.Path) -> str:
    try:
        return pathlib.Path(os.path.relpath(target.resolve(), out_dir.resolve())).as_posix()
    except ValueError:  # different drives (Windows): fall back to the bundle
        return "results.json"


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             autoescape=jinja2.select_autoescape(["html", "j2"], default=True),
                             undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = fmt_num
    env.filters["ci"] = fmt_ci
    env.filters["pretty"] = lambda obj: json.dumps(obj, indent=2, sort_keys=True, default=str)
    env.globals["VERDICT_STYLE"] = VERDICT_STYLE
    env.globals["extra_label"] = an.extra_label
    return env


def _atomic_write(path: pathlib.Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=str(path.parent), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build_report(results_dir, out_dir, compare_dir=None) -> pathlib.Path:
    """Write ``out_dir/index.html`` (and ``out_dir/results.json``) from ``results_dir``; return the HTML path."""
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rs = an.load_results(results_dir)
    prov = _provenance(rs)
    profile = str(prov["profile"] or "unknown")

    bundle = {"run": rs.run, "records": [r["_raw"] for r in rs.records], "problems": rs.problems}
    _atomic_write(out / "results.json", json.dumps(_json_safe(bundle), indent=1, sort_keys=True, default=str))

    claims = []
    for cid, recs in rs.by_claim().items():
        summ = an.summarize_claim(cid, recs)
        figs, notes = claim_figures(cid, recs, profile)
        for r in recs:
            r["_link"] = _relative_link(rs.root / r["_relpath"], out) if r.get("_relpath") else "results.json"
        failing = []
        for r in sorted(recs, key=lambda r: r["cell_key"]):
            if r["control"] or r["verdict"] != "fails":
                continue
            failing.append({"rec": r, "measured": fmt_measured(r["measured"]),
                            "command": reproduce_command(r)})
        thresholds = []
        for L, t in summ.thresholds.items():
            thresholds.append({"L": L, "pooled": t,
                               "regimes": {g: summ.thresholds_by_regime[g].get(L)
                                           for g in summ.thresholds_by_regime}})
        claims.append({
            "id": cid, "anchor": "claim-" + "".join(ch if ch.isalnum() else "-" for ch in cid),
            "meta": _claim_meta(cid), "s": summ, "figs": figs, "notes": notes,
            "panels": an.phase_panels(recs), "failing": failing, "thresholds": thresholds,
            "constants": _constants(recs),
        })

    changes = None
    if compare_dir is not None:
        changes = compare_results(results_dir, compare_dir)

    html = _env().get_template("report.html.j2").render(
        claims=claims, prov=prov, profile=profile, problems=rs.problems,
        results_root=_relative_link(rs.root, out), verdict_rule=_verdict_rule(),
        changes=changes, compare_a=str(pathlib.Path(results_dir)), compare_b=str(compare_dir) if compare_dir else "",
        generated=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        n_records=len(rs.records), verdicts=an.VERDICTS,
    )
    index = out / "index.html"
    _atomic_write(index, html)
    return index


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
            x = an._num(v.get("max") if isinstance(v, dict) else v)
            if math.isfinite(x):
                measured.setdefault(k, []).append(x)
    keys = sorted(set(declared) | set(measured))
    return [{"name": k, "declared": declared.get(k), "worst": max(measured[k]) if measured.get(k) else None,
             "best": min(measured[k]) if measured.get(k) else None} for k in keys]
