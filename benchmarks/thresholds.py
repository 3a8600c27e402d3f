"""Threshold searches (claims/thresholds.py) on Bernoulli examples from known failure curves p(m).

Each curve has a known threshold m* (p(m*) = delta, p <= delta above it) or a known censored or
non-monotone answer. For each method and curve: the coverage of the 95% interval for the true m*
(monotone curves with m* inside [m_min, m_max]: the share of all runs that report a two-sided interval,
status found or inconclusive, containing m*), the median interval width as a factor hi/lo, the mean
examples and the mean cost (in examples at m_max, cost m^2), and the share of runs with each status.
Methods: the adaptive search (``psi``), the same stopping at a factor-2 interval (``psi-r2``), with
check_top (``psi-top``), without the lapse (``psi-nolapse``), and the fixed factor-2 grid (``grid``): one SPRT per width m_min 2^k, ascending, m* in (last width that did not
hold, first width that held].

    python -m benchmarks.thresholds [--runs 200] [--budget 200] [--methods psi,grid]
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import expit, logit

from claims.thresholds import SearchPlan, ThresholdResult, search_threshold
from claims.verdict import SequentialTest

DELTA = 0.1
M_MIN, M_MAX = 16, 2048


@dataclass(frozen=True)
class Curve:
    """A failure curve p(m) with its known answer: ``m_star`` (None when censored or non-monotone)
    and the status a correct search reports."""

    name: str
    p: Callable[[float], float]
    m_star: float | None
    expect: str  # "found" | "above" | "below" | "non-monotone"


def logistic(m_star: float, slope: float, delta: float = DELTA) -> Callable[[float], float]:
    """p(m) = sigmoid(logit(delta) + slope (log2 m* - log2 m)): p(m*) = delta."""
    return lambda m: float(expit(logit(delta) + slope * (math.log2(m_star) - math.log2(m))))


def curves(delta: float = DELTA) -> dict[str, Curve]:
    """The known curves of the simulation study (widths 16 .. 2048, delta 0.1)."""
    m0 = 200.0 * math.sqrt(delta)  # p = (m0/m)^2 reaches delta at m = 200
    return {c.name: c for c in [
        Curve("steep", logistic(300.0, 6.0, delta), 300.0, "found"),
        Curve("shallow", logistic(300.0, 1.0, delta), 300.0, "found"),
        Curve("power", lambda m: min(1.0, (m0 / m) ** 2), 200.0, "found"),
        Curve("step", lambda m: 0.85 if m < 500 else 0.02, 500.0, "found"),
        Curve("U-shaped", lambda m: min(1.0, float(expit(4 * (7 - math.log2(m))) + expit(4 * (math.log2(m) - 10)))),
              None, "non-monotone"),
        Curve("rising", lambda m: float(expit(3 * (math.log2(m) - 8))), None, "non-monotone"),
        Curve("all-fail", lambda m: 1.0, None, "above"),
        Curve("all-pass", lambda m: 0.0, None, "below"),
    ]}


def sampler(curve: Curve, rng: np.random.Generator) -> Callable[[int], bool]:
    """One fresh Bernoulli example at width m: True (passes) with probability 1 - p(m)."""
    return lambda m: bool(rng.random() >= curve.p(m))


def grid_search(sample: Callable[[int], bool | None], plan: SearchPlan) -> ThresholdResult:
    """The fixed factor-2 grid: the SPRT at m_min 2^k (k = 0, 1, ...) ascending until one holds.
    First width holds: below; none holds and the last fails: above; otherwise m* in (previous, first
    holding]; no holding width and the last not failing: inconclusive."""
    widths = []
    m = plan.m_min
    while m < plan.m_max:
        widths.append(m)
        m *= 2
    widths.append(plan.m_max)
    probes, total, prev, cert = [], 0, None, None
    for m in widths:
        test = SequentialTest(plan.test_plan)
        while not test.decided:
            test.add(sample(m))
        d = test.decision
        total += d.examples
        cert = {"m": m, "verdict": d.verdict, "examples": d.examples, "failures": d.failures}
        probes.append({"m": m, "examples": d.examples, "failures": d.failures, "inconclusive": d.inconclusive})
        if d.verdict == "holds":
            if prev is None:
                return ThresholdResult("below", None, (None, float(m)), cert, total, tuple(probes), 1.0)
            return ThresholdResult("found", math.sqrt(prev * m), (float(prev), float(m)), cert, total, tuple(probes), 1.0)
        prev = m
    status = "above" if cert["verdict"] == "fails" else "inconclusive"
    return ThresholdResult(status, None, (float(plan.m_max), None) if status == "above" else None, cert, total,
                           tuple(probes), 1.0)


METHODS = ("psi", "psi-r2", "psi-top", "psi-nolapse", "grid")


def run_one(method: str, curve: Curve, budget: int, seed: int) -> ThresholdResult:
    rng = np.random.default_rng(seed)
    plan = SearchPlan(M_MIN, M_MAX, DELTA, budget, check_top=(method == "psi-top"),
                      lapse=0.0 if method == "psi-nolapse" else None,
                      resolution=2.0 if method == "psi-r2" else 2.0 ** 0.25)
    if method == "grid":
        return grid_search(sampler(curve, rng), plan)
    return search_threshold(sampler(curve, rng), plan, seed=seed)


def simulate(method: str, curve: Curve, runs: int, budget: int, seed: int = 0) -> dict:
    """Operating characteristic of one method on one curve over ``runs`` seeded searches."""
    covered, widths, examples, costs = 0, [], [], []
    status = {}
    for r in range(runs):
        res = run_one(method, curve, budget, seed * 100_003 + r)
        status[res.status] = status.get(res.status, 0) + 1
        examples.append(res.examples)
        costs.append(sum(p["examples"] * (p["m"] / M_MAX) ** 2 for p in res.probes))
        if res.interval is not None and None not in res.interval:  # found or inconclusive
            lo, hi = res.interval
            widths.append(hi / lo)
            if curve.m_star is not None and lo <= curve.m_star <= hi:
                covered += 1
    out = {
        "runs": runs,
        "status": {k: v / runs for k, v in sorted(status.items())},
        "correct": status.get(curve.expect, 0) / runs,
        "mean_examples": float(np.mean(examples)),
        "mean_cost": float(np.mean(costs)),
        "median_width": float(np.median(widths)) if widths else math.nan,
    }
    if curve.m_star is not None:  # a run without a two-sided interval does not cover m*
        out["coverage"] = covered / runs
        out["mc_se"] = math.sqrt(max(out["coverage"] * (1 - out["coverage"]), 0.05 * 0.95) / runs)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.thresholds", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--budget", type=int, default=200)
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--curves", default=",".join(curves()))
    args = ap.parse_args(argv)
    if args.runs < 1 or args.budget < 1:
        ap.error("--runs and --budget must be >= 1")
    methods = args.methods.split(",")
    bad = [m for m in methods if m not in METHODS]
    if bad:
        ap.error(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    known = curves()
    names = args.curves.split(",")
    bad = [c for c in names if c not in known]
    if bad:
        ap.error(f"unknown curve {bad[0]!r}; choose from {', '.join(known)}")
    print(f"delta = {DELTA}, widths {M_MIN} .. {M_MAX}, search budget {args.budget}, SPRT delta_1 = 0.3, "
          f"alpha = beta = 0.05, budget 40; {args.runs} runs per row; cost in examples at m_max (cost m^2)")
    print("| method | curve | expected | correct status | coverage (MC se) | median width | mean examples "
          "| mean cost | statuses | s/run |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for method in methods:
        for name in names:
            c = known[name]
            t0 = time.perf_counter()
            r = simulate(method, c, args.runs, args.budget, seed=1)
            dt = (time.perf_counter() - t0) / args.runs
            cov = f"{r['coverage']:.3f} ({r['mc_se']:.3f})" if "coverage" in r else "-"
            st = ", ".join(f"{k} {v:.2f}" for k, v in r["status"].items())
            print(f"| {method} | {name} | {c.expect} | {r['correct']:.3f} | {cov} | {r['median_width']:.3f} "
                  f"| {r['mean_examples']:.1f} | {r['mean_cost']:.2f} | {st} | {dt:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
