"""Counterexample search for the claims quantified over all inputs: a search cell tries to falsify.

A lemma of the form "for every input z in the constraint set Z: score(z) <= 1" (score = the example's
margin against the pass rule, scale-free, > 1 a counterexample) is attacked, not sampled. A claim that
supports this gives ``Claim.search(cell, ctx) -> SearchProblem`` and lists cells with
``"kind": "search"``; :func:`search_into` runs one (called by :func:`claims.cell.evaluate_cell`):

1. Random baseline. ``random`` recipes of ``problem.strategy`` drawn by hypothesis's generate phase
   (:func:`claims.sampling.draw_recipes`, the cell's seed): each gives a start point
   z_0 = project(start(recipe)) and its score. Their worst and median are what random testing reports.
2. Targeted generation (Loescher & Sagonas, ISSTA 2017). The same strategy and seed under hypothesis's
   generate and target phases, ``draws`` examples, each reporting log score(z_0) to
   ``hypothesis.target``: after the generate phase (whose draws are the baseline's, evaluated once) it
   mutates the best draws toward larger scores.
3. Projected gradient ascent (Madry et al. 2018). The ``restarts`` best distinct points of 1 and 2, each
   refined by ``steps`` steps of z <- project(z + eta ||z|| g / ||g||), g = grad objective(z) (torch
   autograd, float64; the objective is a smooth stand-in for log score: it only proposes directions).
   A step is kept when the exact score improves (or stays equal while the objective improves: a
   plateau of a count); at a kink (a max, lambda_min) where the gradient does
   not ascend, a seeded random direction of the same length is tried; otherwise eta halves
   (:func:`_ascend`). The projection is trusted here, as in projected gradient descent; step 4 checks it.
4. Verification. The worst point found is re-scored by ``problem.score`` (the claim's own, production
   code path) and checked by ``problem.feasible`` (a membership test of Z written independently of the
   projection: a projection that leaves Z is caught here, the cell ends ``error``). It is stored as a
   :class:`SearchPoint` whose values are the float64 tensor itself (JSON floats round-trip exactly), so
   ``rnnclaims reproduce`` re-scores the identical point.

Verdict (not a probability statement): ``fails`` when the worst score exceeds 1 + SCORE_TOL (a
reproducible counterexample), else ``holds``, "no counterexample in effort E", E = draws, random
draws, restarts and gradient steps, all stated in the record. SCORE_TOL = 1e-9 is the float64 floor of
the kernels (SPEC section 2: arccos near 1 keeps about half of float64's digits): a worst case ON the
bound (NTK-PD at n = 2, L = 2 is exactly there) computes as 1 +- 1e-16 and is not a counterexample; the
record says ``at_bound`` when the worst score is within SCORE_TOL of 1.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

__all__ = ["EFFORT", "SCORE_TOL", "evaluations", "SearchProblem", "SearchPoint", "Candidate", "search", "evaluate_point",
           "search_into", "effort_for", "is_search_cell"]

#: a worst score within this of 1 is at the bound to float64 rounding (see the module docstring)
SCORE_TOL = 1e-9

#: per-profile effort of one search cell: targeted hypothesis draws, random baseline draws, gradient
#: restarts and steps per restart
EFFORT: dict[str, dict[str, int]] = {
    "smoke": {"draws": 16, "random": 8, "restarts": 1, "steps": 15},
    "quick": {"draws": 40, "random": 20, "restarts": 2, "steps": 40},
    "standard": {"draws": 150, "random": 75, "restarts": 4, "steps": 150},
    "full": {"draws": 400, "random": 200, "restarts": 8, "steps": 400},
}


def evaluations(profile: Any, cell: dict | None = None) -> int:
    """About how many score evaluations one search cell makes (a claim's cost model: the example's cost
    times this): every draw once, and per gradient step an objective with its gradient (~2 scores)
    plus up to two trial scores."""
    e = effort_for(profile, cell)
    return e["draws"] + 4 * e["restarts"] * e["steps"]


def is_search_cell(cell: dict) -> bool:
    return isinstance(cell, dict) and cell.get("kind") == "search"


def effort_for(profile: Any, cell: dict | None = None) -> dict[str, int]:
    """The effort of a search cell under ``profile``; a cell may override keys with ``"effort": {...}``."""
    name = getattr(profile, "name", profile)
    if name not in EFFORT:
        raise ValueError(f"search effort: unknown profile {name!r}; known: {', '.join(EFFORT)}")
    out = dict(EFFORT[name])
    for key, value in ((cell or {}).get("effort") or {}).items():
        if key not in out or isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"search effort: {key} must be one of {sorted(out)} with an integer >= 0, got {value!r}")
        out[key] = value
    if out["draws"] < 2 or out["random"] < 1:
        raise ValueError(f"search effort: draws must be >= 2 and random >= 1, got {out}")
    return out


@dataclass(frozen=True)
class SearchProblem:
    """One claim's objective on one search cell.

    strategy: hypothesis strategy of recipes (the start points' source).
    start(recipe) -> (z, base): a float64 tensor z (the searched point) and a JSON-safe dict ``base`` of
        what stays fixed (e.g. the network's seed and the input sequence), from which score is defined.
    score(z, base) -> float: the margin against the pass rule (> 1 a counterexample), computed by the
        claim's production code (no autograd needed).
    objective(z, base) -> 0-d tensor: a differentiable stand-in for log score (torch autograd).
    project(z, base) -> z: onto the constraint set Z.
    feasible(z, base) -> "" when z is in Z, else a one-line reason (independent of ``project``).
    constant(score) -> the measured constant in the claim's terms; declared: the claim's constant;
        constant_name: its key in the claim's ``declared``.
    """

    strategy: Any
    start: Callable[[Any], tuple[torch.Tensor, dict]]
    score: Callable[[torch.Tensor, dict], float]
    objective: Callable[[torch.Tensor, dict], torch.Tensor]
    project: Callable[[torch.Tensor, dict], torch.Tensor]
    feasible: Callable[[torch.Tensor, dict], str]
    constant: Callable[[float], float]
    declared: float
    constant_name: str


@dataclass(frozen=True)
class SearchPoint:
    """A searched point, stored exactly: ``values`` the nested list of the float64 tensor (Python's
    float repr round-trips), ``base`` the JSON-safe fixed part. A recipe of a search cell."""

    values: Any
    base: dict = field(default_factory=dict)

    @classmethod
    def of(cls, z: torch.Tensor, base: dict) -> "SearchPoint":
        return cls(values=z.detach().to("cpu", torch.float64).tolist(), base=dict(base))

    def tensor(self, device: Any = "cpu") -> torch.Tensor:
        return torch.tensor(self.values, dtype=torch.float64, device=device)

    def to_dict(self) -> dict:
        return {"search_point": self.values, "base": self.base}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchPoint":
        if not isinstance(d, dict) or set(d) != {"search_point", "base"}:
            raise ValueError("a search recipe must be a JSON object with exactly the keys search_point and base, "
                             f"got {sorted(d) if isinstance(d, dict) else type(d).__name__}")
        if not isinstance(d["base"], dict):
            raise ValueError(f"search recipe: base must be a JSON object, got {type(d['base']).__name__}")
        return cls(values=d["search_point"], base=dict(d["base"]))


@dataclass
class Candidate:
    z: torch.Tensor
    base: dict
    score: float
    origin: str  # "random", "targeted" or "gradient"


def _safe_log(score: float) -> float:
    if math.isnan(score):
        return -1e300
    if score <= 0:
        return -1e300
    return min(math.log(score), 1e300)


def _start(problem: SearchProblem, recipe: Any) -> Candidate | None:
    z, base = problem.start(recipe)
    z = problem.project(z.to(torch.float64), base)
    if problem.feasible(z, base):
        return None  # a draw the projection cannot bring into Z is not a start point
    return Candidate(z=z.detach(), base=base, score=float(problem.score(z, base)), origin="random")


def _ascend(problem: SearchProblem, c: Candidate, steps: int, gen: torch.Generator,
            eta0: float = 0.05) -> tuple[Candidate, int]:
    """Projected normalized-gradient ascent from c, ``steps`` iterations; returns the best candidate and
    the iterations taken. Each iteration tries z + eta ||z|| g / ||g|| (projected); when the exact score
    does not improve (a kink of a max or of lambda_min, where the gradient of one piece is not an ascent
    direction), a random direction of the same length (from ``gen``); when neither improves, eta halves.
    eta grows by 1.5 after an improving gradient step; once below 1e-7 it is reset to eta0 (a fresh start
    of the step size from the best point), at most twice."""
    best, eta, taken, resets = c, eta0, 0, 0
    for _ in range(steps):
        z = best.z.clone().requires_grad_(True)
        obj = problem.objective(z, best.base)
        (g,) = torch.autograd.grad(obj, z, allow_unused=True)
        best_obj = float(obj.detach())
        taken += 1
        scale = float(best.z.norm())
        moves = []
        if g is not None and bool(torch.isfinite(g).all()) and float(g.norm()) > 0.0:
            moves.append(("gradient", g / g.norm()))
        r = torch.randn(best.z.shape, generator=gen, dtype=torch.float64).to(best.z.device)
        moves.append(("random", r / r.norm()))
        improved = False
        for kind, direction in moves:
            with torch.no_grad():
                trial = problem.project(best.z + eta * scale * direction, best.base)
            s = float(problem.score(trial, best.base))
            # a plateau of the exact score (a count such as PERT's flips) is crossed by the objective
            if s > best.score or (s == best.score and kind == "gradient"
                                  and float(problem.objective(trial, best.base)) > best_obj):
                best = Candidate(z=trial.detach(), base=best.base, score=s, origin="gradient")
                eta *= 1.5 if kind == "gradient" else 1.0
                improved = True
                break
        if not improved:
            eta *= 0.5
            if eta < 1e-7:
                if resets >= 2:
                    break
                eta, resets = eta0, resets + 1
    return best, taken


def search(problem: SearchProblem, effort: dict[str, int], seed: int) -> dict:
    """Run steps 1-4 of the module docstring; returns the worst candidate and the search's accounting."""
    from hypothesis import Phase, given, target
    from hypothesis import seed as hyp_seed

    from claims.sampling import _settings, draw_recipes, recipe_json

    cache: dict[str, Candidate | None] = {}
    pool: list[Candidate] = []

    def evaluate(recipe: Any, origin: str) -> Candidate | None:
        key = recipe_json(recipe)
        if key not in cache:
            cache[key] = _start(problem, recipe)
            if cache[key] is not None:
                cache[key].origin = origin
                pool.append(cache[key])
        return cache[key]

    baseline = [c for c in (evaluate(r, "random") for r in draw_recipes(problem.strategy, effort["random"], seed)) if c]
    random_scores = [c.score for c in baseline]
    n_random = len(cache)

    @hyp_seed(seed)
    @_settings(effort["draws"], [Phase.generate, Phase.target])
    @given(problem.strategy)
    def _targeted(recipe: Any) -> None:
        c = evaluate(recipe, "targeted")
        if c is not None:
            target(max(_safe_log(c.score), -1e6), label="log_margin")

    _targeted()
    evaluated = len(cache)
    ranked = sorted(pool, key=lambda c: -c.score if math.isfinite(c.score) else -math.inf)
    starts: list[Candidate] = []
    for c in ranked:
        if len(starts) >= effort["restarts"]:
            break
        if all(c.z.shape != s.z.shape or c.base != s.base or float((c.z - s.z).norm()) > 1e-9 for s in starts):
            starts.append(c)
    steps = 0
    refined: list[Candidate] = []
    gen = torch.Generator().manual_seed(seed % (2**63))
    for c in starts:
        r, k = _ascend(problem, c, effort["steps"], gen)
        refined.append(r)
        steps += k
    worst = max([*pool, *refined], key=lambda c: c.score if not math.isnan(c.score) else -math.inf)
    return {
        "worst": worst,
        "random_scores": random_scores,
        "effort": {"draws": evaluated, "random_draws": n_random, "targeted_draws": evaluated - n_random,
                   "restarts": len(starts), "gradient_steps": steps,
                   "infeasible_draws": sum(1 for v in cache.values() if v is None)},
        "gain_gradient": [r.score - c.score for r, c in zip(refined, starts)],
    }


def evaluate_point(claim: Any, cell: dict, point: SearchPoint, ctx: Any):
    """Re-score one stored point of a search cell (``rnnclaims reproduce``): an :class:`claims.base.Outcome`
    with ok = (score <= 1 + SCORE_TOL), margin = score; a point outside the constraint set is an error."""
    from claims.base import Outcome, finite_or_nan

    import dataclasses

    ctx = dataclasses.replace(ctx, dtype=torch.float64)  # searches run in float64 (see search_into)
    problem = _problem(claim, cell, ctx)
    z = point.tensor(ctx.device)
    why = problem.feasible(z, point.base)
    if why:
        raise ValueError(f"the stored point is outside the constraint set: {why}")
    s = float(problem.score(z, point.base))
    constant = finite_or_nan(problem.constant(s))
    ok = bool(s <= 1.0 + SCORE_TOL)
    return Outcome(ok=ok, margin=s, measured={"score": finite_or_nan(s), problem.constant_name: constant},
                   constants={problem.constant_name: constant},
                   reason="" if ok else f"counterexample: score {s:.6g} > 1 ({problem.constant_name} = {constant:.6g}, "
                                        f"declared {problem.declared:g})")


def _problem(claim: Any, cell: dict, ctx: Any) -> SearchProblem:
    make = getattr(claim, "search", None)
    if make is None:
        raise ValueError(f"claim {claim.id} has no search objective (Claim.search is None)")
    problem = make(cell, ctx)
    if not isinstance(problem, SearchProblem):
        raise TypeError(f"claim {claim.id}: search must return claims.search.SearchProblem, got {type(problem).__name__}")
    return problem


def reproduce_command(claim_id: str, cell: dict, recipe: dict) -> str:
    """The shell command that re-scores ``recipe`` (quoted for a POSIX shell)."""
    import shlex

    return (f"rnnclaims reproduce {claim_id} --cell {shlex.quote(json.dumps(cell, sort_keys=True))} "
            f"--recipe {shlex.quote(json.dumps(recipe))}")


def search_into(claim: Any, cell: dict, profile: Any, record: dict, device: Any, seed: int = 0) -> dict:
    """Run one search cell into ``record`` (a :func:`claims.cell.base_record`, filled by
    :func:`claims.cell.evaluate_cell`) and return it, with ``kind`` and ``search`` added. Networks and
    kernels run in float64 whatever the run's dtype policy says (a search compares scores near 1).
    Exceptions propagate: the caller records them as verdict ``error``."""
    from claims.base import Context, finite_or_nan
    from claims.sampling import cell_seed
    from claims.schema import json_safe

    t0 = time.perf_counter()
    record["kind"] = "search"
    effort = effort_for(profile, cell)
    ctx = Context(device=device, profile=profile, dtype=torch.float64)
    problem = _problem(claim, cell, ctx)
    draw_seed = cell_seed(claim.id, cell, seed)
    record["seeds"] = {"draw_seed": draw_seed}
    result = search(problem, effort, draw_seed)
    worst: Candidate = result["worst"]
    why = problem.feasible(worst.z, worst.base)
    if why:
        raise RuntimeError(f"the worst point is outside the constraint set (projection fault?): {why}")
    score = float(problem.score(worst.z, worst.base))
    if not (score == worst.score or (math.isnan(score) and math.isnan(worst.score))):
        raise RuntimeError(f"re-scoring the worst point gave {score!r}, the search saw {worst.score!r}")
    recipe = json_safe(SearchPoint.of(worst.z, worst.base).to_dict())
    fails = not score <= 1.0 + SCORE_TOL
    rs = result["random_scores"]
    e = dict(result["effort"], seconds=round(time.perf_counter() - t0, 3))
    effort_text = (f"{e['draws']} draws ({e['random_draws']} random, {e['targeted_draws']} targeted), "
                   f"{e['restarts']} gradient restarts, {e['gradient_steps']} gradient steps")
    worst_constant = finite_or_nan(problem.constant(score))
    record.update(
        verdict="fails" if fails else "holds",
        reason=(f"counterexample: score {score:.6g} > 1, {problem.constant_name} = {worst_constant:.6g} against "
                f"the declared {problem.declared:g} (found by {worst.origin} search in {effort_text})") if fails
        else f"no counterexample in effort {effort_text}; worst score {score:.6g}",
        examples=1, failures=int(fails), margin=finite_or_nan(score), margins=[finite_or_nan(score)],
        example_ok=[not fails], recipes=[recipe],
        measured={"worst_score": {"mean": score, "min": score, "max": score, "n": 1}},
        measured_constants={problem.constant_name: worst_constant},
    )
    if fails:
        record.update(failing_recipe=recipe, failing_example=0,
                      failing_outcome={"ok": False, "margin": finite_or_nan(score), "reason": record["reason"],
                                       "measured": {}, "constants": {problem.constant_name: worst_constant}})
    record["search"] = json_safe({
        "worst_score": score,
        "worst_constant": worst_constant,
        "declared_constant": problem.declared,
        "constant_name": problem.constant_name,
        "at_bound": abs(score - 1.0) <= SCORE_TOL,
        "worst_origin": worst.origin,
        "random_worst": problem.constant(max(rs)) if rs else math.nan,
        "random_median": problem.constant(statistics.median(rs)) if rs else math.nan,
        "random_worst_score": max(rs) if rs else math.nan,
        "effort": e,
        "gradient_gain": result["gain_gradient"],
        "worst_recipe": recipe,
        "reproduce": reproduce_command(claim.id, cell, recipe),
    })
    return record
