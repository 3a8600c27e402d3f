"""Which sequential test decides a cell: Wald's SPRT (the suite's rule, claims/verdict.py) against an
anytime-valid alternative, a mixture test martingale (a time-uniform confidence sequence in the sense of
Howard, Ramdas, McAuliffe & Sekhon 2021), on Bernoulli failure streams with known p.

The alternative rejects H1 "p >= delta_1" (-> holds) when the mixture likelihood ratio

    M_n = (1/delta_1) int_0^delta_1 (q / delta_1)^F ((1 - q) / (1 - delta_1))^S dq

reaches 1/beta, and rejects H0 "p <= delta" (-> fails) when the mirror-image mixture over q in
[delta, 1] reaches 1/alpha (F failures, S passes). Each M_n is a nonnegative supermartingale under its
null, so by Ville's inequality the error rates hold at every stopping time, without Wald's
approximations. Both tests stop at the same example budget.

    python -m benchmarks.verdict [--runs 4000] [--budget 40] [--delta 0.1]
"""

from __future__ import annotations

import argparse
import math
import random

from scipy.special import betainc, betaln

from claims.verdict import SequentialTest, TestPlan


def _log_mixture_holds(F: int, S: int, d1: float) -> float:
    # log[(1/d1) * int_0^d1 q^F (1-q)^S dq / (d1^F (1-d1)^S)]
    inc = betainc(F + 1, S + 1, d1)
    if inc <= 0:
        return -math.inf
    return math.log(inc) + betaln(F + 1, S + 1) - math.log(d1) - F * math.log(d1) - S * math.log1p(-d1)


def _log_mixture_fails(F: int, S: int, d: float) -> float:
    # log[(1/(1-d)) * int_d^1 q^F (1-q)^S dq / (d^F (1-d)^S)]
    inc = 1.0 - betainc(F + 1, S + 1, d)
    if inc <= 0:
        return -math.inf
    base = (F * math.log(d) if F else 0.0) + S * math.log1p(-d)
    return math.log(inc) + betaln(F + 1, S + 1) - math.log1p(-d) - base


def mixture_verdict(stream, plan: TestPlan) -> tuple[str, int]:
    F = S = 0
    for n, failed in enumerate(stream, start=1):
        F += failed
        S += not failed
        if plan.delta > 0 and _log_mixture_fails(F, S, plan.delta) >= math.log(1 / plan.alpha):
            return "fails", n
        if plan.delta == 0 and F:
            return "fails", n
        if _log_mixture_holds(F, S, plan.delta_1) >= math.log(1 / plan.beta):
            return "holds", n
        if n >= plan.budget:
            return "inconclusive", n
    return "inconclusive", F + S


def simulate(plan: TestPlan, p: float, runs: int, seed: int) -> dict[str, dict[str, float]]:
    out = {}
    for name in ("sprt", "mixture"):
        rng = random.Random(seed)
        counts = {"holds": 0, "fails": 0, "inconclusive": 0}
        examples = 0
        for _ in range(runs):
            stream = [rng.random() < p for _ in range(plan.budget)]
            if name == "sprt":
                test = SequentialTest(plan)
                for failed in stream:
                    test.add(not failed)
                    if test.decided:
                        break
                verdict, n = test.decision.verdict, test.examples
            else:
                verdict, n = mixture_verdict(stream, plan)
            counts[verdict] += 1
            examples += n
        out[name] = {**{k: v / runs for k, v in counts.items()}, "mean_examples": examples / runs}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.verdict", description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=4000)
    ap.add_argument("--budget", type=int, default=40)
    ap.add_argument("--delta", type=float, default=0.1)
    args = ap.parse_args(argv)
    if args.runs < 1 or args.budget < 1:
        ap.error("--runs and --budget must be >= 1")
    plan = TestPlan.of(args.delta, budget=args.budget)
    se = math.sqrt(0.05 * 0.95 / args.runs)
    print(f"delta = {plan.delta:g}, delta_1 = {plan.delta_1:g}, alpha = beta = 0.05, budget {plan.budget}, "
          f"{args.runs} runs per p (MC standard error of a rate near 0.05: {se:.4f})")
    print("| p | SPRT holds / fails / inconcl. | SPRT mean examples | mixture holds / fails / inconcl. "
          "| mixture mean examples |")
    print("|---|---|---|---|---|")
    for p in (0.0, plan.delta, (plan.delta + plan.delta_1) / 2, plan.delta_1, 0.6):
        r = simulate(plan, p, args.runs, seed=7)
        s, m = r["sprt"], r["mixture"]
        print(f"| {p:.3g} | {s['holds']:.3f} / {s['fails']:.3f} / {s['inconclusive']:.3f} | {s['mean_examples']:.1f} "
              f"| {m['holds']:.3f} / {m['fails']:.3f} / {m['inconclusive']:.3f} | {m['mean_examples']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
