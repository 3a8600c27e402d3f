"""LAZY: gradient descent on W stays near initialization and converges linearly.

Setting: full-batch GD on the recurrent matrix W only (A, B fixed), centered output
f_c(W, x) = f(W, x) - f(W_0, x), standardized additive labels y on n training sequences with separation
>= SEPARATION_FLOOR, and rnn_core.train.train_gd's loss (a SUM over the sequences):

    Loss(W) = (1/2) sum_i (f_c(W, x_i) - y_i)^2,    W_{t+1} = W_t - eta grad_W Loss(W_t),
    eta = 1 / (m lambda_max(H_m(W_0)))               (train_gd's default step; H_m normalized by 1/m).

Checked over the run (t = 1..T, T = the step at which Loss <= 1e-3 Loss_0, or the step cap):

    (a)  Loss_t <= rho^t Loss_0,  rho = 1 - eta m lambda_min(H_inf) / 2                  (SPEC rate)
    (a') Loss_t <= Loss_lin+(t / 2),  Loss_lin+(s) = (1/2) sum_{i fast} (1 - eta m lambda_i)^(2 s) c_i
                                                  + (1/2) sum_{i slow} c_i,    c_i = (v_i^T y)^2,
         with (lambda_i, v_i) the eigenpairs of H_m(W_0), "fast" meaning lambda_i >= 0.1 lambda_max: on the
         components that the kernel drift allowed by (c) cannot reorder, the network is at most twice as
         slow as its linearization at W_0; the slow components are left to (a)
    (b)  ||W_t - W_0||_F <= 2 sqrt(y^T H_m(W_0)^-1 y / m)
    (c)  ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op <= 0.1

Why the constants fit the SUM normalization: linearized, r_{t+1} = (I - eta m H_m) r_t, and with
eta m lambda_max = 1 every factor lies in [0, 1), so Loss_lin(t) <= (1 - a)^(2t) Loss_0 <= (1 - a/2)^t Loss_0
with a = lambda_min(H_m) / lambda_max(H_m): (a) holds for the linear model whenever
lambda_min(H_m) >= lambda_min(H_inf) / 2. The linearized iterates converge to the minimum-norm
interpolant, ||W_inf - W_0||_F = sqrt(y^T (m H_m)^-1 y), monotonically: (b) is twice that limit.
Loss_lin+ is non-increasing in s, so (a') says every loss level is reached within twice the steps of
that prediction; its measured constant is max_t t / s_t with Loss_lin+(s_t) = Loss_t (bisection).

eta and the predictions: rho and Loss_lin use the claim's own eta (from its eigendecomposition of
H_m(W_0), float64); the run uses train_gd's default step (the "step 10x too large" control passes
10 eta explicitly), so a mis-scaled step inside train_gd shows up as a network slower or faster than
its predicted curve.

Horizon. An example is inconclusive (reason stated) when lambda_min(H_inf) <= 1e-8 lambda_max(H_inf)
(numerically singular data), or when neither prediction contracts by HORIZON_FRACTION within the step
cap T_cap (rho^T_cap > 1/2 and Loss_lin+(T_cap / 2) > Loss_0 / 2): then the network is not trained (a
control cell makes a PROBE_STEPS-step run, in which only a violation counts). The cap is the profile's,
lowered for wide or long cells to a flop budget per example.

Negative controls: the step 10x too large (the top eigencomponent's factor is 1 - 10 = -9: the loss
grows at once and (a), (a') fail); a tiny width m = TINY_WIDTH at L = TINY_LENGTH (H_m(W_0) has rank
<= m^2 < n and no concentration: the loss cannot follow the H_inf rate, or the kernel moves). At L = 2 a
tiny network is nearly linear in W (W acts once), which is why the control runs at L = 4.

Measured constants (declared values in ``declared``): rate_divisor C* = eta m lambda_min(H_inf) /
min_t (1 - (Loss_t / Loss_0)^(1/t)) [2]; lin_time_factor [2]; w_dist_factor =
max_t ||W_t - W_0||_F / sqrt(y^T H_m^-1 y / m) [2]; drift_max [0.1].
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np
import torch

from claims.base import Claim, Context, NotAsserted, Outcome, finite_or_nan
from claims.catalogue import _cost
from claims.catalogue._training import LOSS_FRACTION, train_as_lazy
from claims.registry import register
from rnn_core.data import first_informative_position
from rnn_core.numerics import guarded_ratio

__all__ = [
    "CLAIM", "SETTINGS", "linearized_loss", "linearized_iterations", "linearized_time", "gradient_drift",
    "lazy_run",
]

#: kernel-drift threshold of part (c) (SPEC)
DRIFT_MAX = 0.1
#: (a'): the network may be at most this many times slower than its linearization
LIN_TIME_FACTOR = 2.0
#: the training data's separation floor (SPEC: positive-definiteness needs separation > 0)
SEPARATION_FLOOR = 0.01
#: lambda_min(H_inf) <= this * lambda_max(H_inf): numerically singular, the example is inconclusive
SINGULAR_RATIO = 1e-8
#: a horizon "sees the contraction" when a prediction falls to this fraction of Loss_0 within the cap
HORIZON_FRACTION = 0.5
#: steps of the probe run when the cap is too short to see the contraction (only violations count)
PROBE_STEPS = 20
#: the tiny-width control (see the module docstring)
TINY_WIDTH = 2
TINY_LENGTH = 4
#: step multiplier of the "step too large" control
ETA_FACTOR_CONTROL = 10.0
#: at most this many series rows per example
MAX_SERIES_ROWS = 50

#: per-profile settings: n training sequences; steps: the step cap, lowered for wide or long cells so that
#: one example's GD stays within ``flops`` (one step costs about 6 n L m^2 flops); tiny_steps: the tiny
#: control's cap (m = 2 costs nothing); which (m, L) pairs run (every width for L <= max_L_all_widths, else
#: widths <= max_m_long).
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 8, "steps": 150, "flops": 1.5e10, "tiny_steps": 300, "max_L_all_widths": 4, "max_m_long": 256},
    "quick": {"n": 8, "steps": 300, "flops": 2.5e10, "tiny_steps": 300, "max_L_all_widths": 2, "max_m_long": 512},
    "standard": {"n": 16, "steps": 1000, "flops": 5e10, "tiny_steps": 3000, "max_L_all_widths": 4,
                 "max_m_long": 1024},
    "full": {"n": 32, "steps": 10000, "flops": 1e13, "tiny_steps": 10000, "max_L_all_widths": 64,
             "max_m_long": 8192},
}


# ---------------------------------------------------------------------------------------------------
# the linearized model
# ---------------------------------------------------------------------------------------------------


def linearized_loss(evals: np.ndarray, coeffs: np.ndarray, eta_m: float, t) -> np.ndarray:
    """Loss_lin(t) = (1/2) sum_i (1 - eta m lambda_i)^(2t) c_i, c_i = (v_i^T y)^2, for real t >= 0.

    evals: eigenvalues lambda_i of H_m(W_0); eta_m = eta * m. Computed in the log domain per component
    (a factor 0 gives 0 for t > 0); overflow gives +inf."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    fac = np.abs(1.0 - eta_m * np.asarray(evals, dtype=np.float64))
    c = np.asarray(coeffs, dtype=np.float64)
    out = np.zeros(t.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        logfac = np.log(fac)
        logc = np.log(np.where(c > 0, c, 1.0))
        for k, tk in enumerate(t):
            if tk == 0:
                out[k] = 0.5 * c.sum()
                continue
            out[k] = 0.5 * np.where(c > 0, np.exp(2.0 * tk * logfac + logc), 0.0).sum()
    return out


def linearized_iterations(evals, coeffs, eta_m: float, fraction: float = LOSS_FRACTION, t_max: int = 10**9):
    """Smallest integer t with Loss_lin(t) <= fraction * Loss_lin(0); None when it exceeds t_max (or the
    linear model does not get there: a factor |1 - eta m lambda_i| >= 1 on a component with c_i > 0)."""
    c = np.asarray(coeffs, dtype=np.float64)
    target = fraction * 0.5 * c.sum()
    if target <= 0:
        return 0

    def ok(t: int) -> bool:
        return bool(linearized_loss(evals, coeffs, eta_m, t)[0] <= target)

    hi = 1
    while not ok(hi):
        hi *= 2
        if hi > t_max:
            return None
    lo = hi // 2
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def linearized_time(evals, coeffs, eta_m: float, losses, *, floor: float = 0.0, s_max: float = 1e9) -> np.ndarray:
    """For each loss value l: the real s >= 0 with Loss_lin(s) + floor = l (the linear model's time to l).

    Loss_lin is non-increasing when every factor |1 - eta m lambda_i| <= 1 (the claim's step); l >=
    Loss_lin(0) + floor gives 0, l at or below the curve's limit (or reached after s_max) gives +inf."""
    losses = np.atleast_1d(np.asarray(losses, dtype=np.float64))
    out = np.empty(losses.shape)

    def curve(s: float) -> float:
        return float(linearized_loss(evals, coeffs, eta_m, s)[0]) + floor

    top = curve(0.0)
    for k, target in enumerate(losses):
        if not math.isfinite(target):
            out[k] = math.nan
            continue
        if target >= top:
            out[k] = 0.0
            continue
        hi = 1.0
        while curve(hi) > target and hi <= s_max:
            hi *= 2.0
        if hi > s_max:
            out[k] = math.inf
            continue
        lo = 0.0 if hi == 1.0 else hi / 2.0
        for _ in range(60):  # bisection to ~1e-18 relative of hi
            mid = 0.5 * (lo + hi)
            if curve(mid) > target:
                lo = mid
            else:
                hi = mid
        out[k] = hi
    return out


def split_spectrum(evals, coeffs, threshold: float = 0.1) -> tuple[np.ndarray, np.ndarray, float]:
    """(fast eigenvalues, their coefficients, frozen loss): the components with lambda_i >= threshold *
    lambda_max decay in the prediction of (a'); the rest is held at its initial value (1/2) sum c_i."""
    ev = np.asarray(evals, dtype=np.float64)
    c = np.asarray(coeffs, dtype=np.float64)
    fast = ev >= threshold * ev.max()
    return ev[fast], c[fast], 0.5 * float(c[~fast].sum())


# ---------------------------------------------------------------------------------------------------
# drift and the run
# ---------------------------------------------------------------------------------------------------


def gradient_drift(p0, W_T: torch.Tensor, X) -> torch.Tensor:
    """||grad_W f(W_T, x_i) - grad_W f(W_0, x_i)||_F / ||grad_W f(W_0, x_i)||_F for every i, shape (n,).

    From (2L, 2L) Gram matrices (rnn_core.perturb.gram_fro_norm): never an m x m gradient. A zero
    gradient at W_0 gives NaN (no change) or +inf (rnn_core.numerics.guarded_ratio)."""
    from rnn_core.ntk import ntk_features
    from rnn_core.perturb import gram_fro_norm

    X = torch.as_tensor(X).to(device=p0.device, dtype=p0.dtype)
    L = X.shape[1]
    if L < 2:
        return torch.zeros(X.shape[0], dtype=p0.dtype, device=p0.device)
    d0, h0 = ntk_features(p0, X)  # (n, L-1, m): delta_l and h_{l-1}, l = 2..L, at W_0
    dT, hT = ntk_features(p0.with_W(W_T), X)  # the same at W_T
    change = gram_fro_norm(torch.cat([dT - d0, d0], dim=1), torch.cat([hT, hT - h0], dim=1))
    return guarded_ratio(change, gram_fro_norm(d0, h0), zero_by_zero=math.nan)


def _rate_check(ts: np.ndarray, losses: np.ndarray, loss0: float, rho: float) -> tuple[float, float]:
    """(max_{t>=1} Loss_t / (rho^t Loss_0), the rate divisor C*), in the log domain."""
    sel = ts >= 1
    if not sel.any():
        return 0.0, math.nan
    if not np.all(np.isfinite(losses[sel])):
        return math.inf, math.inf
    # A loss far above rho^t Loss_0 (rho tiny, t large) overflows exp to +inf: the check fails, as it should.
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        if rho > 0:
            ratio = float(np.exp(np.max(np.log(losses[sel]) - ts[sel] * math.log(rho) - math.log(loss0))))
        else:
            ratio = math.inf if np.any(losses[sel] > 0) else 0.0
        achieved = 1.0 - np.power(np.maximum(losses[sel], 0.0) / loss0, 1.0 / ts[sel])
    worst = float(np.min(achieved))
    divisor = (2.0 * (1.0 - rho)) / worst if worst > 0 else math.inf
    return ratio, divisor


def lazy_run(p, X, y, *, steps: int, eta_factor: float = 1.0, probe: bool = True) -> dict:
    """Everything one example needs: spectra, the horizon, the run, the four checks' statistics.

    y must be standardized (not all zero). ``status`` is "singular" (H_inf numerically singular: no
    run), "short" (the cap cannot see the predicted contraction and ``probe`` is False: no run),
    "probe" (the same, with a PROBE_STEPS-step run) or "run"."""
    import rnn_core
    from rnn_core.linalg import quadratic_form

    m = p.m
    X = torch.as_tensor(X).to(device=p.device, dtype=p.dtype)
    y = torch.as_tensor(y, dtype=torch.float64)
    loss0 = 0.5 * float(y @ y)
    if not loss0 > 0.0:
        raise ValueError("lazy_run: the labels are all zero (Loss_0 = 0); there is nothing to train")
    H0 = rnn_core.empirical_ntk(p, X).to(device="cpu", dtype=torch.float64)
    ev_inf = torch.linalg.eigvalsh(rnn_core.infinite_ntk(X).to(device="cpu", dtype=torch.float64))
    lam_min_inf, lam_max_inf = float(ev_inf[0]), float(ev_inf[-1])
    evals, evecs = torch.linalg.eigh(H0)
    lam_max_m, lam_min_m = float(evals[-1]), float(evals[0])
    out: dict = {
        "loss0": loss0,
        "lambda_min_inf": lam_min_inf,
        "lambda_max_inf": lam_max_inf,
        "lambda_max_m": lam_max_m,
        "lambda_min_m": lam_min_m,
    }
    if not lam_min_inf > SINGULAR_RATIO * lam_max_inf:
        out["status"] = "singular"
        return out
    if not lam_max_m > 0.0:
        raise ValueError(f"lambda_max(H_m(W_0)) = {lam_max_m} is not positive: no step size exists")
    eta_m = 1.0 / lam_max_m  # the claim's eta times m
    rho = 1.0 - eta_m * lam_min_inf / 2.0
    ev = evals.numpy()
    coeffs = ((evecs.T @ y) ** 2).numpy()
    cap = int(steps)
    rho_cap = rho**cap if rho > 0 else 0.0
    ev_fast, c_fast, frozen = split_spectrum(ev, coeffs, DRIFT_MAX)

    def lin_plus(t):  # the prediction of (a'): fast components decay, slow ones are held
        return linearized_loss(ev_fast, c_fast, eta_m, t) + frozen

    lin_half_cap = float(lin_plus(cap / LIN_TIME_FACTOR)[0]) / loss0
    horizon = rho_cap <= HORIZON_FRACTION or lin_half_cap <= HORIZON_FRACTION
    out.update(rho=rho, rho_cap=rho_cap, lin_half_cap=lin_half_cap)
    if not horizon and not probe:
        out["status"] = "short"
        return out
    run_steps = cap if horizon else min(cap, PROBE_STEPS)

    res = train_as_lazy(p, X, y, steps=run_steps, record_every=1, eta_factor=eta_factor, lam_max=lam_max_m,
                        track_kernel=True).run
    ts = np.asarray(res.ts, dtype=np.float64)
    losses = np.asarray(res.losses, dtype=np.float64)
    rate_ratio, rate_divisor = _rate_check(ts, losses, loss0, rho)
    sel = ts >= 1
    lin_half = lin_plus(ts / LIN_TIME_FACTOR)
    if not sel.any():
        lin_ratio, lin_factor = 0.0, math.nan
    elif not np.all(np.isfinite(losses[sel])):
        lin_ratio, lin_factor = math.inf, math.inf
    else:
        lin_ratio = float(np.max(guarded_ratio(losses[sel], lin_half[sel], zero_by_zero=math.nan)))
        s = linearized_time(ev_fast, c_fast, eta_m, losses[sel], floor=frozen)
        with np.errstate(divide="ignore", invalid="ignore"):
            factors = np.where(s > 0, ts[sel] / np.where(s > 0, s, 1.0), math.inf)
        lin_factor = float(np.max(factors))
    qf = quadratic_form(H0, y)
    w_dist_lin = math.sqrt(max(qf, 0.0) / m)
    gdrift = gradient_drift(p, res.W_T, X)
    out.update(
        status="run" if horizon else "probe",
        eta_m=eta_m,
        eta_used=float(res.eta),
        eta_spec=eta_m / m,
        ts=ts,
        losses=losses,
        predicted=np.exp(ts * math.log(rho) + math.log(loss0)) if rho > 0 else np.where(ts == 0, loss0, 0.0),
        linear=linearized_loss(ev, coeffs, eta_m, ts),
        rate_ratio=rate_ratio,
        rate_divisor=rate_divisor,
        lin_ratio=lin_ratio,
        lin_time_factor=lin_factor,
        w_dist=float(np.max(res.w_dist)) if res.w_dist else 0.0,
        w_dist_lin=w_dist_lin,
        w_bound=2.0 * w_dist_lin,
        w_norm0=float(torch.linalg.norm(p.W)),
        kernel_drift=float(res.kernel_drift) if res.kernel_drift is not None else math.nan,
        grad_drift=float(torch.nan_to_num(gdrift, nan=0.0).max()) if gdrift.numel() else 0.0,
        steps=int(res.steps),
        stopped=res.stopped,
        iters_lin=linearized_iterations(ev, coeffs, eta_m),
        frozen_fraction=frozen / loss0,
    )
    return out


# ---------------------------------------------------------------------------------------------------
# the claim's pieces
# ---------------------------------------------------------------------------------------------------


def _is_tiny(cell: dict) -> bool:
    return int(cell["m"]) == TINY_WIDTH and bool(cell.get("control", False))


def cells(profile) -> list[dict]:
    s = CLAIM.settings_for(profile)
    out = [
        {"m": m, "L": L, "regime": regime}
        for regime in profile.regimes
        for L in profile.lengths
        for m in profile.widths
        if L <= s["max_L_all_widths"] or m <= s["max_m_long"]
    ]
    L0 = profile.lengths[0]
    for regime in profile.regimes:
        out.append({"m": profile.widths[0], "L": L0, "regime": regime, "eta_factor": ETA_FACTOR_CONTROL,
                    "control": True})
        out.append({"m": TINY_WIDTH, "L": TINY_LENGTH, "regime": regime, "control": True})
    return out


def strategy(cell: dict, profile):
    from hypothesis import strategies as st

    from claims.strategies import recipes, target_specs

    L = int(cell["L"])
    # an additive concept; in the normalized regime X_1 = e_d is shared, so positions come from 2..L
    lo = min(first_informative_position(cell["regime"]), L)
    positions = st.lists(st.integers(lo, L), min_size=1, max_size=max(1, min(3, L - lo + 1)), unique=True)
    return recipes(
        n=CLAIM.settings_for(profile)["n"],
        L=L,
        regime=cell["regime"],
        target=target_specs(L=L, family="additive", positions=positions),
        separation_floor=SEPARATION_FLOOR,
    )


def _steps(cell: dict, profile) -> int:
    """The cell's step cap: the profile's cap, limited to a flop budget per example (6 n L m^2 per step)."""
    s = CLAIM.settings_for(profile)
    if _is_tiny(cell):
        return int(s["tiny_steps"])
    if cell.get("eta_factor", 1.0) != 1.0:
        return PROBE_STEPS  # a 10x step shows within a few steps
    per_step = 6.0 * s["n"] * int(cell["L"]) * int(cell["m"]) ** 2
    return int(max(PROBE_STEPS, min(s["steps"], s["flops"] // per_step)))


def evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    import rnn_core
    from rnn_core.data import make_dataset
    from rnn_core.targets import Standardizer

    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    if not float(y @ y) > 0.0:
        return Outcome(ok=None, margin=math.nan, measured={"constant_labels": 1},
                       reason="constant labels: Loss_0 = 0, nothing to train")
    p = rnn_core.init_params(int(cell["m"]), recipe.d, seed=recipe.init_seed, device=ctx.device, dtype=ctx.dtype)
    if not float(rnn_core.empirical_ntk(p, X).diagonal().max()) > 0.0:
        # every grad_W f(x_i) is 0 (no unit active, possible at tiny widths): GD cannot move W
        return Outcome(ok=False, margin=math.inf, measured={"untrainable": 1},
                       reason="H_m(W_0) = 0: no unit is active on any input, GD cannot move W")
    cap = _steps(cell, ctx.profile)
    r = lazy_run(p, X, y, steps=cap, eta_factor=float(cell.get("eta_factor", 1.0)),
                 probe=bool(cell.get("control", False)))
    kappa_inf = r["lambda_max_inf"] / r["lambda_min_inf"] if r["lambda_min_inf"] > 0 else math.inf
    if r["status"] == "singular":
        return Outcome(ok=None, margin=math.nan, measured={"singular": 1, "kappa_inf": finite_or_nan(kappa_inf)},
                       reason=f"H_inf numerically singular: lambda_min / lambda_max = {1 / kappa_inf:.1e}")
    horizon_reason = (
        f"horizon: within the cap of {cap} steps neither rho^T ({r['rho_cap']:.2f}) nor Loss_lin+(T/2)/Loss_0 "
        f"({r['lin_half_cap']:.2f}) falls to {HORIZON_FRACTION}")
    if r["status"] == "short":
        return Outcome(ok=None, margin=math.nan, reason=horizon_reason + " (not trained)",
                       measured={"short": 1, "kappa_inf": finite_or_nan(kappa_inf), "rho_cap": r["rho_cap"],
                                 "lin_half_cap": r["lin_half_cap"], "cap": cap})

    w_ratio = float(guarded_ratio(r["w_dist"], r["w_bound"], zero_by_zero=math.nan))
    w_ratio = 0.0 if math.isnan(w_ratio) else w_ratio
    drift_ratio = r["kernel_drift"] / DRIFT_MAX
    parts = {
        "(a) rate": r["rate_ratio"],
        "(a') linearized": r["lin_ratio"],
        "(b) distance": w_ratio,
        "(c) kernel drift": drift_ratio if math.isfinite(drift_ratio) else math.inf,
    }
    failed = [k for k, v in parts.items() if not v <= 1.0]
    margin = max(parts.values())
    if failed:
        ok, reason = False, "fails " + ", ".join(f"{k} (ratio {parts[k]:.3g})" for k in failed)
    elif r["status"] == "probe":
        ok, reason = None, horizon_reason + f"; a {r['steps']}-step probe passed"
    else:
        ok, reason = True, ""

    measured = {
        "iters_to_1e-3": r["steps"] if r["stopped"] == "loss_target" else math.nan,
        "iters_lin_1e-3": finite_or_nan(r["iters_lin"]) if r["iters_lin"] is not None else math.nan,
        "capped": int(r["stopped"] == "step_cap"),
        "diverged": int(r["stopped"] == "diverged"),
        "probe": int(r["status"] == "probe"),
        "steps_run": r["steps"],
        "cap": cap,
        "loss_ratio_T": finite_or_nan(r["losses"][-1] / r["loss0"]),
        "rho": r["rho"],
        "rho_T": finite_or_nan(r["rho"] ** r["steps"]) if r["rho"] > 0 else 0.0,
        "rate_ratio": finite_or_nan(r["rate_ratio"]),
        "lin_ratio": finite_or_nan(r["lin_ratio"]),
        "w_dist": finite_or_nan(r["w_dist"]),
        "w_dist_bound": finite_or_nan(r["w_bound"]),
        "w_dist_lin": finite_or_nan(r["w_dist_lin"]),
        "w_dist_ratio": finite_or_nan(w_ratio),
        "w_dist_rel": finite_or_nan(guarded_ratio(r["w_dist"], r["w_norm0"], zero_by_zero=math.nan)),
        "kernel_drift": finite_or_nan(r["kernel_drift"]),
        "grad_drift": finite_or_nan(r["grad_drift"]),
        "kappa_inf": finite_or_nan(kappa_inf),
        "kappa_m": finite_or_nan(r["lambda_max_m"] / r["lambda_min_m"]) if r["lambda_min_m"] > 0 else math.nan,
        "lambda_min_m_over_inf": finite_or_nan(r["lambda_min_m"] / r["lambda_min_inf"]),
        "eta_used_over_spec": finite_or_nan(r["eta_used"] / r["eta_spec"]),
    }
    ts = r["ts"]
    keep = np.unique(np.linspace(0, len(ts) - 1, num=min(MAX_SERIES_ROWS, len(ts))).round().astype(int))
    series = [
        {"t": int(ts[k]), "loss": finite_or_nan(r["losses"][k]), "predicted": finite_or_nan(r["predicted"][k]),
         "linear": finite_or_nan(r["linear"][k])}
        for k in keep
    ]
    constants = {
        "rate_divisor": finite_or_nan(r["rate_divisor"]),
        "lin_time_factor": finite_or_nan(r["lin_time_factor"]),
        "drift_max": finite_or_nan(r["kernel_drift"]),
        "w_dist_factor": finite_or_nan(guarded_ratio(r["w_dist"], r["w_dist_lin"], zero_by_zero=math.nan)),
    }
    return Outcome(ok=ok, margin=margin if math.isfinite(margin) else math.inf, measured=measured,
                   series=series, constants=constants, reason=reason)


def must_hold(cell: dict, profile) -> bool | NotAsserted:
    if cell.get("control", False) or cell["m"] != profile.max_width or cell["L"] != 2:
        return False
    reason = _NOT_ASSERTED.get((profile.name, cell["regime"]))
    return NotAsserted(reason) if reason is not None else True


_HORIZON = (
    "horizon: with eps = 0.05, lambda_min(H_inf) / lambda_max(H_inf) ~ 1e-3 and the contraction the claim "
    "predicts needs thousands of GD steps, beyond the CPU step caps (every example is inconclusive)"
)
#: why the SPEC's "holds at the largest width for L = 2" is not asserted in some CPU cells
#: (docs/SPEC_NOTES.md has the measurements)
_NOT_ASSERTED = {
    ("smoke", "normalized"): _HORIZON,
    ("quick", "normalized"): _HORIZON,
    # the flop budget caps the largest width at L = 2 at 20 GD steps (standard, m = 8192) and 24 (full, 32768)
    ("standard", "normalized"): _HORIZON,
    ("full", "normalized"): _HORIZON,
    ("smoke", "unnormalized"): (
        "finite width and horizon: with step norms in [0.25, 4], cond(H_inf) ~ 30-700 and about 40% of the examples "
        "cannot see the predicted contraction within smoke's 150-step cap (the cell's 20 examples barely give the 12 "
        "conclusive ones a verdict needs), while with a 1000-step cap the kernel drift (c) exceeds 0.1 in about a "
        "quarter of the runs at m = 256; asserted from quick's m = 2048 on"
    ),
    ("quick", "unnormalized"): (
        "mostly inconclusive: 14 of 31 examples at m = 2048 cannot see the predicted contraction within quick's "
        "300-step cap (ill-conditioned H_inf, decided before training), more than the third the share rule allows "
        "for a holding cell; 0 of the 17 conclusive examples failed (docs/SPEC_NOTES.md)"
    ),
}


def memory_bytes(cell: dict, profile) -> int:
    n = CLAIM.settings_for(profile)["n"]
    m, L = int(cell["m"]), int(cell["L"])
    # W_0, W_t, gradient and a temporary (m x m each); forward/backward states; kernels are n x n
    return 8 * (5 * m * m + 8 * n * (L + 1) * m + 8 * n * n)


def cost(cell: dict, profile) -> float:
    """Seconds of one example on one core: the GD steps (a typical run stops at a third of the cap) and
    about ten steps' worth of kernels, drift and gradients."""
    n = CLAIM.settings_for(profile)["n"]
    m, L = int(cell["m"]), int(cell["L"])
    steps = _steps(cell, profile) / 3.0 + 10.0
    return _cost.gd(m, n, L, steps) + _cost.EXAMPLE_OVERHEAD_S


def figure(claim: str, records: list[dict], profile: str) -> Any:
    """The report figure: training curves against the predicted linear rate."""
    from reports import figures as kit  # matplotlib: imported when the report draws

    curves = []
    for r in kit.main_records(records):
        ex = defaultdict(list)
        for row in r["series"]:
            if "t" in row and "loss" in row:
                ex[row.get("example", 0)].append(row)
        if ex:
            first = sorted(ex)[0]
            curves.append((r, sorted(ex[first], key=lambda row: kit.num(row["t"]))))
    if not curves:
        raise kit.Missing("no series rows with t and loss")
    # keep the widest cell per (L, regime) so the plot stays readable
    best = {}
    for r, rows in curves:
        k = (r["params"].get("L"), r["params"].get("regime"))
        if k not in best or kit.num(r["params"].get("m", 0)) > kit.num(best[k][0]["params"].get("m", 0)):
            best[k] = (r, rows)
    fig, (ax,) = kit.new_axes(w=6.0, h=4.0)
    for i, (k, (r, rows)) in enumerate(sorted(best.items(), key=lambda kv: tuple(str(x) for x in kv[0]))[:8]):
        t, loss = kit.finite_points([row["t"] for row in rows], [row["loss"] for row in rows])
        col = kit.OKABE_ITO[i % len(kit.OKABE_ITO)]
        lab = ", ".join(f"{a}={r['params'][a]}" for a in ("L", "m", "regime") if a in r["params"])
        ax.plot(t, loss, color=col, label=lab)
        tp, pred = kit.finite_points([row["t"] for row in rows], [row.get("predicted") for row in rows])
        if pred:
            ax.plot(tp, pred, color=col, ls="--", lw=1)
    ax.set_yscale("log")
    ax.set_xlabel("GD step t")
    ax.set_ylabel("training loss")
    ax.legend(fontsize=7)
    return kit.Figure("lazy", "Training curves against the predicted linear rate", kit.to_svg(fig),
                      "Full-batch GD training loss against step t (solid) and the predicted linear rate "
                      "(1 − η m λ_min(H_inf)/2)^t loss_0 (dashed, same colour), first example of the widest "
                      f"cell per (L, regime), at most 8 curves. Profile: {profile}.")


CLAIM = register(
    Claim.from_module(
        __name__,
        id="LAZY",
        title="GD on W stays near initialization and converges linearly",
        operationalizes=(
            "the optimization part of the paper (training stays in the NTK regime: W_T close to W_0, the "
            "kernel barely moves, the loss decays geometrically) and the 'iterations' half of its "
            "'iterations and samples almost-polynomial in L'"
        ),
        statement=(
            "Full-batch GD on W, squared loss (1/2) sum_i (f_c - y_i)^2 (train_gd's SUM normalization), centered "
            f"output, eta = 1/(m lambda_max(H_m(W_0))), n sequences with separation >= {SEPARATION_FLOOR}: "
            "(a) loss_t <= (1 - eta m lambda_min(H_inf)/2)^t loss_0 and (a') loss_t <= Loss_lin+(t/2): the loss of "
            "the model linearized at W_0 at half the steps, on the eigencomponents of H_m(W_0) with lambda_i >= "
            "0.1 lambda_max (the others held at their initial value: the kernel drift (c) allows can reorder them); "
            "(b) ||W_t - W_0||_F <= 2 sqrt(y^T H_m(W_0)^-1 y / m) (twice the linearized limit); "
            "(c) ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op <= 0.1. Reports the iterations to reach "
            "loss <= 1e-3 loss_0 (run and linearized model) and the gradient drift on the training points."
        ),
        pass_rule=(
            "runs stop at loss <= 1e-3 loss_0 or at the profile's step cap; an example fails when (a), (a') or "
            "(b) is violated at some step t >= 1 or (c) at the end; it is inconclusive when "
            "lambda_min(H_inf) <= 1e-8 lambda_max(H_inf), or when within the cap neither rho^T nor "
            f"Loss_lin+(T/2)/loss_0 falls to {HORIZON_FRACTION} (the horizon cannot see the predicted contraction: "
            f"not trained; control cells run a {PROBE_STEPS}-step probe in which only a violation counts); the cap is "
            "the profile's, lowered for wide or long cells to a flop budget per example; margin = max of the four "
            "ratios"
        ),
        negative_control=(
            f"eta {ETA_FACTOR_CONTROL:g}x too large ({PROBE_STEPS} steps: the loss grows at once), or a tiny width "
            f"m = {TINY_WIDTH} at L = {TINY_LENGTH}: fails"
        ),
        expected=(
            "holds at the largest width for L = 2 (not asserted in the normalized regime on CPU profiles, whose step "
            "caps cannot see its predicted contraction, nor in the unnormalized regime at smoke's m = 256, where the "
            "kernel drifts by more than 0.1); findings elsewhere"
        ),
        axes=("m", "L", "regime"),
        declared={"rate_divisor": 2.0, "lin_time_factor": LIN_TIME_FACTOR, "drift_max": DRIFT_MAX,
                  "w_dist_factor": 2.0},
        delta=0.1,
    )
)
