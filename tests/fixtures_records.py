"""Synthetic claim records for the report tests (schema of docs/ARCHITECTURE.md, "Records").

Nothing here runs a network: the records are made up, with known answers (threshold widths, flips)
that the tests check the report against. ``synthetic_quick`` builds a quick-profile-sized result set
for every claim of the catalogue with measured keys and series rows following the series conventions.
"""

from __future__ import annotations

import json
import math
import pathlib

import numpy as np
from scipy import stats

QUICK_M = (128, 512, 2048)
QUICK_L = (2, 4, 8, 16)
REGIMES = ("normalized", "unit", "unnormalized")


def cell_key(params: dict) -> str:
    parts = []
    for k in sorted(params):
        v = params[k]
        v = f"{v:g}" if isinstance(v, float) else v
        parts.append("".join(ch if ch.isalnum() or ch in "=.-_" else "_" for ch in f"{k}={v}"))
    return "__".join(parts) or "default"


def clopper_pearson(k: int, n: int, conf: float = 0.95) -> list[float]:
    if n == 0:
        return [0.0, 1.0]
    a = 1 - conf
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1 - a, k + 1, n - k))
    return [lo, hi]


def make_record(claim: str, params: dict, verdict: str, margin: float = float("nan"), *, examples: int = 5,
                measured: dict | None = None, series: list | None = None, control: bool | None = None,
                failing_recipe: dict | None = None, profile: str = "quick", duration_s: float = 0.5,
                declared: dict | None = None, constants: dict | None = None) -> dict:
    control = bool(params.get("control", False)) if control is None else control
    failures = {"holds": 0, "fails": examples, "inconclusive": 0}.get(verdict, 0)
    if verdict == "fails" and failing_recipe is None:
        failing_recipe = {"n": 4, "L": params.get("L", 2), "d": 2, "regime": params.get("regime", "unit"),
                          "directions": "sphere", "target": {"family": "additive", "f": "z2", "positions": [1],
                                                             "seed": 0},
                          "separation_floor": 0.0, "data_seed": 3, "init_seed": 7, "vocab": 8,
                          "note": "it's quoted"}
    return {
        "schema": 1, "claim": claim, "cell_key": cell_key(params), "params": dict(params),
        "control": control, "verdict": verdict, "must_hold": False,
        "examples": examples if verdict not in ("skipped", "error") else 0, "failures": failures,
        "inconclusive": examples if verdict == "inconclusive" else 0,
        "failure_rate_ci": clopper_pearson(failures, examples) if verdict not in ("skipped", "error") else None,
        "delta": 0.1, "margin": None if not math.isfinite(margin) else margin,
        "measured": measured or {}, "declared_constants": declared or {}, "measured_constants": constants or {},
        "series": series or [], "failing_recipe": failing_recipe, "shrunk": failing_recipe is not None,
        "recipes": [], "seeds": {"init": [0, 1, 2], "hypothesis": 12345}, "device": "cpu",
        "versions": {"torch": "2.3.0", "numpy": "1.26", "hypothesis": "6.100", "python": "3.11"},
        "git_commit": "0123abc", "profile": profile, "started": "2024-01-01T00:00:00+00:00",
        "duration_s": duration_s, "message": "",
    }


def write_results(root: pathlib.Path, records: list[dict], run: dict | None = None) -> pathlib.Path:
    root = pathlib.Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for r in records:
        d = root / r["claim"]
        d.mkdir(exist_ok=True)
        (d / f"{r['cell_key']}.json").write_text(json.dumps(r, indent=1))
    if run is not None:
        (root / "_run.json").write_text(json.dumps(run, indent=1))
    return root


def threshold_records(claim: str, Ls, ms, regimes, m_star: dict, *, fail_verdict: str = "fails") -> list[dict]:
    """Cells that hold iff m >= m_star[(regime, L)] (or m_star[L]); m_star None: never holds."""
    recs = []
    for g in regimes:
        for L in Ls:
            ms_ = m_star.get((g, L), m_star.get(L))
            for m in ms:
                ok = ms_ is not None and m >= ms_
                margin = 0.5 if ok else 2.0
                recs.append(make_record(claim, {"m": m, "L": L, "regime": g}, "holds" if ok else fail_verdict,
                                        margin, measured={"error": {"mean": 0.1 * margin, "max": 0.1 * margin}}))
    return recs


def run_meta(profile: str = "quick") -> dict:
    return {"profile": profile, "device": "cpu (synthetic)", "start": "2024-01-01T00:00:00+00:00",
            "end": "2024-01-01T00:08:00+00:00", "wall_s": 480.0,
            "per_claim_wall_s": {"FWD": 12.0, "NTK-CONV": 60.0},
            "versions": {"torch": "2.3.0", "numpy": "1.26", "hypothesis": "6.100", "python": "3.11"},
            "git_commit": "0123abc", "seeds": {"hypothesis": 12345}}


def _grid_claim(claim, rng, margin_fn, measured_fn, series_fn=None, control_params=None, Ls=QUICK_L, ms=QUICK_M):
    recs = []
    for g in REGIMES:
        for L in Ls:
            for m in ms:
                mg = margin_fn(L, m, g) * float(rng.uniform(0.9, 1.1))
                v = "holds" if mg <= 1 else ("inconclusive" if mg < 1.1 else "fails")
                recs.append(make_record(claim, {"m": m, "L": L, "regime": g}, v, mg,
                                        measured=measured_fn(L, m, g, mg),
                                        series=series_fn(L, m, g) if series_fn else []))
    for cp in control_params or []:
        recs.append(make_record(claim, dict(cp, control=True), "fails", 5.0, measured=measured_fn(cp.get("L", 4), cp.get("m", 128), "unit", 5.0)))
    return recs


def synthetic_quick(seed: int = 0) -> list[dict]:
    """Every claim of the catalogue on the quick grid, with plausible made-up numbers."""
    rng = np.random.default_rng(seed)
    recs: list[dict] = []
    agg = lambda x: {"mean": x, "max": x * 1.1, "min": x * 0.9}  # noqa: E731

    def layer_series(L, m, g):
        return [{"l": l, "ratio": float(1 + rng.normal(0, l / math.sqrt(m))), "example": e}
                for e in range(2) for l in range(1, L + 1)]

    recs += _grid_claim("FWD", rng, lambda L, m, g: 0.6 * math.sqrt(L * 128 / m) + 0.3,
                        lambda L, m, g, mg: {"ratio_min": agg(0.8), "ratio_max": agg(1.3)}, layer_series,
                        [{"m": 128, "L": 8, "regime": "unit"}])
    recs += _grid_claim("BWD", rng, lambda L, m, g: 0.5 * math.sqrt(L * 128 / m) + 0.4,
                        lambda L, m, g, mg: {"ratio_min": agg(0.4), "ratio_max": agg(0.6)}, layer_series,
                        [{"m": 128, "L": 8, "regime": "unit"}])
    recs += _grid_claim("GRAD", rng, lambda L, m, g: 0.4 * math.sqrt(L * 128 / m) + 0.5,
                        lambda L, m, g, mg: {"ratio_min": agg(0.7), "ratio_max": agg(1.4)}, None,
                        [{"m": 128, "L": 8, "regime": "unit"}])
    recs += _grid_claim("NTK-CONV", rng, lambda L, m, g: 0.5 * L / math.sqrt(m) / 0.1 * 2,
                        lambda L, m, g, mg: {"error": agg(0.1 * mg)}, None,
                        [{"m": 512, "L": 4, "regime": "unit"}])
    for L in QUICK_L:  # slope cells
        ser = [{"m": m, "error": 0.5 * L / math.sqrt(m) * float(rng.uniform(0.9, 1.1)), "example": 0}
               for m in (128, 512, 2048)]
        recs.append(make_record("NTK-CONV", {"L": L, "regime": "unit", "kind": "slope"}, "holds", 0.8,
                                measured={"slope": agg(-0.5)}, series=ser))
    for g in REGIMES:  # NTK-PD: L x n
        for L in QUICK_L:
            for n in (8, 32, 128):
                lam = 0.3 / L / n ** 0.5
                recs.append(make_record("NTK-PD", {"L": L, "n": n, "regime": g}, "holds", 0.3,
                                        measured={"lambda_min": agg(lam), "lambda_max": agg(L * n / 4.0),
                                                  "separation": agg(0.2), "constant": agg(3.0)},
                                        declared={"c": 1.0}, constants={"c": 3.0}))
        recs.append(make_record("NTK-PD", {"L": 4, "n": 8, "regime": g, "control": True}, "fails", 1e3,
                                measured={"lambda_min": agg(1e-12)}))
    recs += _grid_claim("NTK-PD-M", rng, lambda L, m, g: 1.6 * math.sqrt(L * 32 / m),
                        lambda L, m, g, mg: {"lambda_min_m": agg(0.1 / L * (1 - 0.3 * mg)),
                                             "lambda_min_inf": agg(0.1 / L), "ratio": agg(1 - 0.3 * mg)}, None,
                        [{"m": 4, "L": 4, "regime": "unit"}])

    def pert_series(L, m, g):
        rows = []
        for om in (1e-4, 1e-3, 1e-2, 1e-1):
            for d in ("random", "adversarial"):
                for stat, p in (("r_h", 1.0), ("flips", 2 / 3), ("r_g", 1 / 3), ("first_order", 1 / 3)):
                    rows.append({"omega": om, "direction": d, "stat": stat,
                                 "value": 0.5 * (om * L) ** p * (1.5 if d == "adversarial" else 1.0),
                                 "bound": 4 * (om * L) ** p, "example": 0})
        return rows

    recs += _grid_claim("PERT", rng, lambda L, m, g: 0.375, lambda L, m, g, mg: {"r_h": agg(0.7)}, pert_series,
                        [{"m": 512, "L": 4, "regime": "unit", "omega": 1.0}], Ls=(2, 8), ms=(512,))

    def lazy_series(L, m, g):
        return [{"t": t, "loss": math.exp(-0.05 * t), "predicted": math.exp(-0.03 * t), "example": 0}
                for t in range(0, 200, 5)]

    recs += _grid_claim("LAZY", rng, lambda L, m, g: 0.9 * math.sqrt(L * 128 / m),
                        lambda L, m, g, mg: {"iters_to_1e-3": agg(140.0), "w_dist": agg(1.0),
                                             "w_dist_bound": agg(2.0), "kernel_drift": agg(0.05)},
                        lazy_series, [{"m": 4, "L": 4, "regime": "unit"}], ms=(128, 2048))
    for g in REGIMES:  # GEN-ADD: L x n
        for L in (2, 4):
            for n in (64, 256, 1024):
                B = 4.0 / math.sqrt(n) * L ** 0.5
                rows = [{"n": n, "test_loss": 0.3 / n ** 0.25, "train_loss": 0.01, "B": B, "example": 0}]
                recs.append(make_record("GEN-ADD", {"L": L, "n": n, "regime": g}, "holds", 0.4,
                                        measured={"test_loss": agg(0.3 / n ** 0.25), "train_loss": agg(0.01),
                                                  "B": agg(B), "vacuous": agg(float(B >= 1))}, series=rows))
    recs.append(make_record("GEN-ADD", {"L": 2, "n": 256, "regime": "unit", "control": True}, "fails", 3.0))
    recs += _grid_claim("GEN-KRR", rng, lambda L, m, g: 0.8 * math.sqrt(L * 128 / m),
                        lambda L, m, g, mg: {"rel_rms": agg(0.1 * mg)}, None, [{"m": 4, "L": 2, "regime": "unit"}],
                        Ls=(2, 4))
    for g in REGIMES:  # CPLX-ADD: one cell per regime, the L sweep inside
        ser = [{"L": L, "n_eps": (None if L == 16 else 16 * L ** 2), "example": 0} for L in (2, 3, 4, 6, 8, 12, 16)]
        recs.append(make_record("CPLX-ADD", {"regime": g, "f": "z2"}, "holds", 0.6,
                                measured={"exponent": agg(2.0), "rss_power": agg(0.01), "rss_exp": agg(0.5),
                                          "finite_points": agg(6.0)}, series=ser))
    recs.append(make_record("CPLX-ADD", {"regime": "unit", "f": "z2", "control": True}, "inconclusive"))
    ser = [{"N": N, "l0": l0, "L": 8, "lag": 0, "n_eps": (None if N * (l0 + 1) > 8 else 32 * N * (l0 + 1)),
            "example": 0} for N in (1, 2, 3) for l0 in (0, 1, 2, 4)]
    for N in (1, 2, 3):
        recs.append(make_record("CPLX-NVAR", {"N": N, "regime": "unit"}, "holds" if N <= 2 else "inconclusive",
                                0.7 if N <= 2 else float("nan"), measured={"exponent": agg(2.5)},
                                series=[r for r in ser if r["N"] == N]))
    recs.append(make_record("CPLX-NVAR", {"N": 4, "regime": "unit", "control": True}, "fails", 4.0))
    for L in (2, 4, 8):  # RAND-LABEL: ratio vs n per L
        for n in (32, 128, 512):
            ratio = 0.6 / math.log2(n) * L ** 0.3
            recs.append(make_record("RAND-LABEL", {"L": L, "n": n, "regime": "unit"}, "holds", ratio / 0.5,
                                    measured={"ratio": agg(ratio)},
                                    series=[{"n": n, "L": L, "C_concept": ratio, "C_random": 1.0, "ratio": ratio,
                                             "example": 0}]))
    recs.append(make_record("RAND-LABEL", {"L": 4, "n": 128, "regime": "unit", "control": True}, "fails", 1.9))
    return recs
