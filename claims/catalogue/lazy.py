"""LAZY: gradient descent on W stays near initialization and converges linearly (the "iterations" half).

Setting (SPEC section 4, row LAZY): full-batch GD on the recurrent matrix W only (A, B fixed) with the
centered output f_c(W, x) = f(W, x) - f(W_0, x), standardized concept labels y (an additive target,
SPEC section 3) on n training sequences, and rnn_core.train.train_gd's loss normalization (a SUM):

    Loss(W) = (1/2) sum_i (f_c(W, x_i) - y_i)^2,      W_{t+1} = W_t - eta grad_W Loss(W_t),
    eta = 1 / (m lambda_max(H_m(W_0)))                 (H_m the empirical NTK, normalized by 1/m).

The claim checks, for the run (T = the steps run: until Loss <= 1e-3 Loss_0, or the profile's cap):

    (a) Loss_t <= rho^t Loss_0 for t = 1..T,  rho = 1 - eta m lambda_min(H_inf) / 2
    (b) ||W_t - W_0||_F <= 2 sqrt(y^T H_m(W_0)^-1 y / m)       for t <= T
    (c) ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op <= 0.1

and reports the iterations to reach Loss <= 1e-3 Loss_0 and the gradient drift on the training points,
max_i ||grad f(W_T, x_i) - grad f(W_0, x_i)||_F / ||grad f(W_0, x_i)||_F.

Why these constants are right for the SUM normalization (checked, not assumed). Linearizing f around
W_0, J the (n, m^2) Jacobian, J J^T = m H_m: r_{t+1} = (I - eta m H_m) r_t. With eta m lambda_max = 1 the
factors 1 - lambda_i / lambda_max lie in [0, 1), so Loss_t <= (1 - a)^(2t) Loss_0 with
a = lambda_min(H_m) / lambda_max(H_m), and (1 - a)^2 <= 1 - a / 2 for a in [0, 1]. Hence (a) holds for the
linear model whenever lambda_min(H_m) >= lambda_min(H_inf) / 2 (the NTK-PD-M claim), with a factor-2
slack in the exponent. Under a MEAN normalization (Loss / n, gradient / n) the same eta would contract
only by 1 - lambda_i / (n lambda_max) and the SPEC's rate would be off by a factor n; train_gd uses the
sum, so the SPEC formula is used as written.

(b) The linearized GD iterates stay in the row space of J and converge to the minimum-norm
interpolant W_inf - W_0 = J^T (J J^T)^-1 y, whose norm is exactly

    ||W_inf - W_0||_F = sqrt(y^T (m H_m)^-1 y) = sqrt(y^T H_m^-1 y / m),

and ||W_t - W_0||_F increases monotonically to it (each eigencomponent's coefficient
(1 - (1 - eta m lambda_i)^t) / lambda_i grows with t). The SPEC's bound 2 sqrt(y^T H_m^-1 y / m) is
therefore twice the linearized limit: the factor m is right (H_m is normalized by 1/m, J J^T = m H_m),
and the 2 is slack for the non-linearity. The record carries w_dist_lin = sqrt(y^T H_m^-1 y / m) so
the ratio w_dist / w_dist_lin (<= 1 in the lazy regime) is visible. y^T H_m^-1 y uses
rnn_core.linalg.quadratic_form (Cholesky, relative jitter 1e-12).

Iterations. iters_to_1e-3 is the step at which Loss <= 1e-3 Loss_0 (train_gd's loss target; NaN and
capped = 1 when the profile's step cap came first). iters_lin_1e-3 is the same count for the linearized
model, Loss_lin(t) = (1/2) sum_i (1 - eta m lambda_i)^(2t) (v_i^T y)^2 from the eigendecomposition of
H_m(W_0): it exists even when the run was capped, and the record shows how well the network follows it.

Measured constants (the smallest that would make each part hold; declared in brackets): rate_divisor
C* = eta m lambda_min(H_inf) / min_t (1 - (Loss_t / Loss_0)^(1/t)) [2], so that (a) holds iff C* <= 2;
w_dist_factor = max_t ||W_t - W_0||_F / sqrt(y^T H_m^-1 y / m) [2]; drift_max = the kernel drift [0.1].

Pass rule (one example): (a) and (b) at every recorded step of the run, and (c) at its end. Margin =
max(max_{t>=1} Loss_t / (rho^t Loss_0), max_t w_dist_t / bound, kernel_drift / 0.1); t = 0 is excluded
from (a) because it is an identity (ratio exactly 1). A capped run is checked over the steps run.

Negative controls: the step 10x too large (eta = 10 / (m lambda_max)): the top eigencomponent is
multiplied by 1 - 10 = -9 per step, the loss grows at once and (a) fails (train_gd stops the run as
"diverged" once Loss > 1e6 Loss_0). And a tiny width (m = 4): H_m(W_0) has rank <= m^2 and no
concentration, the kernel moves by O(1) during training, so (a) or (c) fails. The tiny control runs at
m = 2, L = 4: at L = 2 the network is piecewise LINEAR in W (W acts once), a tiny net barely moves its
kernel and fails only through a singular H_m(W_0), which (a) detects only after ~1/(1 - rho) steps
(rho ~ 0.999 there, beyond the step caps): m = 4, L = 2 failed 13 of 18 seeded examples, m = 2, L = 4
failed 56 of 60 hypothesis-drawn ones.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from claims.base import Claim, Context, Outcome, finite_or_nan
from claims.registry import register

__all__ = ["CLAIM", "SETTINGS", "linearized_loss", "linearized_iterations", "gradient_drift", "lazy_run"]

#: kernel-drift threshold of part (c) (SPEC)
DRIFT_MAX = 0.1
#: the loss reduction that defines "converged" (SPEC: iterations to reach Loss <= 1e-3 Loss_0)
LOSS_FRACTION = 1e-3
#: the width and length of the "m tiny" control (m = 2 at L = 4 failed 56 of 60 hypothesis-drawn quick
#: examples, 17-20 of 20 per regime; m = 4 at L = 2 only 13 of 18 seeded ones: at L = 2 the tiny network
#: is nearly linear in W and its singular kernel only shows after ~1/(1 - rho) steps, beyond the caps)
TINY_WIDTH = 2
TINY_LENGTH = 4
#: step multiplier of the "step too large" control
ETA_FACTOR_CONTROL = 10.0
#: at most this many series rows per example
MAX_SERIES_ROWS = 50

#: per-profile settings: n training sequences, step cap, and which (m, L) pairs are trained (all widths
#: for lengths <= max_L_all_widths; above that only widths <= max_m_long). One GD step costs about
#: 6 n L m^2 flops, so the largest widths at the longest lengths are out of reach of the CPU profiles.
SETTINGS: dict[str, dict] = {
    "smoke": {"n": 8, "steps": 60, "max_L_all_widths": 4, "max_m_long": 256},
    "quick": {"n": 8, "steps": 40, "max_L_all_widths": 2, "max_m_long": 512},
    "standard": {"n": 32, "steps": 300, "max_L_all_widths": 16, "max_m_long": 2048},
    "full": {"n": 64, "steps": 2000, "max_L_all_widths": 64, "max_m_long": 8192},
}


def _settings(profile) -> dict:
    name = getattr(profile, "name", profile)
    return SETTINGS.get(name, SETTINGS["quick"])


# ---------------------------------------------------------------------------------------------------
# linearized model and drift
# ---------------------------------------------------------------------------------------------------


def linearized_loss(evals: np.ndarray, coeffs: np.ndarray, eta_m: float, t) -> np.ndarray:
    """Loss_lin(t) = (1/2) sum_i (1 - eta m lambda_i)^(2t) c_i, c_i = (v_i^T y)^2 (t scalar or array).

    evals: eigenvalues lambda_i of H_m(W_0); eta_m = eta * m. Computed in the log domain per component
    (factors 0 give 0 for t >= 1); overflow gives +inf."""
    t = np.atleast_1d(np.asarray(t, dtype=np.float64))
    fac = np.abs(1.0 - eta_m * np.asarray(evals, dtype=np.float64))
    c = np.asarray(coeffs, dtype=np.float64)
    out = np.zeros(t.shape)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        logfac = np.log(fac)
        for k, tk in enumerate(t):
            if tk == 0:
                out[k] = 0.5 * c.sum()
                continue
            terms = np.where(c > 0, np.exp(2.0 * tk * logfac + np.log(np.where(c > 0, c, 1.0))), 0.0)
            out[k] = 0.5 * terms.sum()
    return out


def linearized_iterations(evals, coeffs, eta_m: float, fraction: float = LOSS_FRACTION, t_max: int = 10**9):
    """Smallest integer t with Loss_lin(t) <= fraction * Loss_lin(0); None when it exceeds t_max (or the
    linear model does not converge: a factor |1 - eta m lambda_i| >= 1 on a component with c_i > 0)."""
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
    lo = hi // 2  # ok(lo) is False (or lo = 0 < the answer)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi


def gradient_drift(p0, W_T: torch.Tensor, X) -> torch.Tensor:
    """||grad_W f(W_T, x_i) - grad_W f(W_0, x_i)||_F / ||grad_W f(W_0, x_i)||_F for every i, shape (n,).

    From (2L, 2L) Gram matrices (see claims.catalogue.pert.gram_fro_change): never an m x m gradient.
    A zero gradient at W_0 gives 0 (no change) or +inf."""
    from claims.catalogue.pert import _guarded_ratio, gram_fro_change
    from rnn_core.model import backward_deltas_tm, forward

    X = torch.as_tensor(X).to(device=p0.device, dtype=p0.dtype)
    L = X.shape[1]
    if L < 2:
        return torch.zeros(X.shape[0], dtype=p0.dtype, device=p0.device)
    fw0 = forward(p0, X)
    pT = p0.with_W(W_T)
    fwT = forward(pT, X)
    d0 = backward_deltas_tm(p0, fw0)[1:].permute(1, 0, 2)  # (n, L-1, m): delta_l, l = 2..L
    dT = backward_deltas_tm(pT, fwT)[1:].permute(1, 0, 2)
    h0 = fw0.h_tm[1:L].permute(1, 0, 2)  # h_{l-1}
    hT = fwT.h_tm[1:L].permute(1, 0, 2)
    change = gram_fro_change(torch.cat([dT - d0, d0], dim=1), torch.cat([hT, hT - h0], dim=1))
    return _guarded_ratio(change, gram_fro_change(d0, h0))


def lazy_run(p, X, y, *, steps: int, eta_factor: float = 1.0) -> dict:
    """Train (rnn_core.train.train_gd) and measure everything the claim needs; returns a dict.

    y must already be standardized. Keys: see the module docstring and :func:`_evaluate`."""
    import rnn_core
    from rnn_core.linalg import quadratic_form
    from rnn_core.train import train_gd

    m = p.m
    X = torch.as_tensor(X).to(device=p.device, dtype=p.dtype)
    y = torch.as_tensor(y, dtype=torch.float64)
    H0 = rnn_core.empirical_ntk(p, X).to(torch.float64)
    Hinf = rnn_core.infinite_ntk(X).to(torch.float64)
    evals, evecs = torch.linalg.eigh(H0.cpu())
    lam_max_m = float(evals[-1])
    lam_min_m = float(evals[0])
    lam_min_inf = float(torch.linalg.eigvalsh(Hinf.cpu())[0])
    if not lam_max_m > 0.0:
        raise ValueError(f"lambda_max(H_m(W_0)) = {lam_max_m} is not positive (L = 1?): no step size exists")
    eta = eta_factor / (m * lam_max_m)
    eta_m = eta * m
    rho = 1.0 - eta_m * lam_min_inf / 2.0
    loss0 = 0.5 * float(y @ y)
    if not loss0 > 0.0:
        raise ValueError("lazy_run: the labels are all zero (Loss_0 = 0); there is nothing to train")
    res = train_gd(
        p, X, y.to(device=p.device, dtype=p.dtype), eta=eta, steps=steps,
        loss_target=LOSS_FRACTION * loss0, record_every=1, track_kernel=True,
    )
    ts = np.asarray(res.ts, dtype=np.float64)
    losses = np.asarray(res.losses, dtype=np.float64)
    # (a) in the log domain (rho^t underflows for long runs); rho <= 0 predicts 0 loss for t >= 1
    with np.errstate(divide="ignore", invalid="ignore"):
        if rho > 0:
            log_pred = ts * math.log(rho) + math.log(loss0)
            pred = np.exp(log_pred)
            log_ratio = np.log(losses) - log_pred
        else:
            pred = np.where(ts == 0, loss0, 0.0)
            log_ratio = np.where(losses > 0, np.inf, -np.inf)
    sel = ts >= 1
    if not sel.any():
        rate_ratio = 0.0  # no step run: nothing to check
    elif not np.all(np.isfinite(losses[sel])):
        rate_ratio = math.inf  # the run blew up
    else:
        rate_ratio = float(np.exp(np.max(log_ratio[sel])))  # +inf where rho^t = 0 < Loss_t
    # the measured constant of (a): the smallest C with Loss_t <= (1 - eta m lambda_min(H_inf) / C)^t Loss_0
    # for every t >= 1 run (declared C = 2): C* = eta m lambda_min / min_t (1 - (Loss_t / Loss_0)^(1/t))
    if sel.any() and np.all(np.isfinite(losses[sel])) and lam_min_inf > 0:
        with np.errstate(divide="ignore", invalid="ignore"):
            achieved = 1.0 - np.power(np.maximum(losses[sel], 0.0) / loss0, 1.0 / ts[sel])
        worst = float(np.min(achieved))
        rate_divisor = eta_m * lam_min_inf / worst if worst > 0 else math.inf
    else:
        rate_divisor = math.nan if not sel.any() else math.inf
    # (b)
    qf = quadratic_form(H0, y)
    w_dist_lin = math.sqrt(max(qf, 0.0) / m)
    w_bound = 2.0 * w_dist_lin
    w_dist = float(np.max(res.w_dist)) if res.w_dist else 0.0
    # linearized model: the loss curve and the iterations to 1e-3
    coeffs = ((evecs.T @ y) ** 2).numpy()
    ev = evals.numpy()
    lin_curve = linearized_loss(ev, coeffs, eta_m, ts)
    iters_lin = linearized_iterations(ev, coeffs, eta_m) if eta_factor <= 1.0 else None
    gdrift = gradient_drift(p, res.W_T, X)
    return {
        "eta": eta,
        "rho": rho,
        "lambda_max_m": lam_max_m,
        "lambda_min_m": lam_min_m,
        "lambda_min_inf": lam_min_inf,
        "loss0": loss0,
        "ts": ts,
        "losses": losses,
        "predicted": pred,
        "linear": lin_curve,
        "rate_ratio": rate_ratio,
        "rate_divisor": rate_divisor,
        "w_dist": w_dist,
        "w_dist_lin": w_dist_lin,
        "w_bound": w_bound,
        "w_norm0": float(torch.linalg.norm(p.W)),
        "kernel_drift": float(res.kernel_drift) if res.kernel_drift is not None else math.nan,
        "grad_drift": float(gdrift.max()) if gdrift.numel() else 0.0,
        "steps": int(res.steps),
        "stopped": res.stopped,
        "iters_lin": iters_lin,
    }


# ---------------------------------------------------------------------------------------------------
# the claim
# ---------------------------------------------------------------------------------------------------


def _cells(profile) -> list[dict]:
    s = _settings(profile)
    cells = [
        {"m": m, "L": L, "regime": regime}
        for regime in profile.regimes
        for L in profile.lengths
        for m in profile.widths
        if L <= s["max_L_all_widths"] or m <= s["max_m_long"]
    ]
    L0 = profile.lengths[0]
    for regime in profile.regimes:
        cells.append({"m": profile.widths[0], "L": L0, "regime": regime, "eta_factor": ETA_FACTOR_CONTROL,
                      "control": True})
        cells.append({"m": TINY_WIDTH, "L": TINY_LENGTH, "regime": regime, "control": True})
    return cells


def _strategy(cell: dict, profile):
    from hypothesis import strategies as st

    from claims.strategies import recipes, target_specs

    L = cell["L"]
    # A concept target: additive (SPEC "Labels: a concept target (additive, standardized)"). In the
    # normalized regime every sequence has X_1 = e_d, so a target that reads only position 1 is constant
    # (nothing to fit); there the positions are drawn from 2..L.
    lo = 2 if cell["regime"] == "normalized" and L >= 2 else 1
    positions = st.lists(st.integers(lo, L), min_size=1, max_size=max(1, min(3, L - lo + 1)), unique=True)
    return recipes(
        n=_settings(profile)["n"],
        L=L,
        regime=cell["regime"],
        target=target_specs(L=L, family="additive", positions=positions),
        separation_floor=0.0,
    )


def _evaluate(cell: dict, recipe, ctx: Context) -> Outcome:
    import rnn_core
    from rnn_core.data import make_dataset
    from rnn_core.targets import Standardizer

    s = _settings(ctx.profile)
    X, y_raw = make_dataset(recipe)
    y = Standardizer.fit(y_raw)(y_raw)
    p = rnn_core.init_params(int(cell["m"]), recipe.d, seed=recipe.init_seed, device=ctx.device, dtype=ctx.dtype)
    if not float(y @ y) > 0.0:
        # constant labels standardize to 0: Loss_0 = 0 and there is nothing to train (inconclusive)
        return Outcome(ok=None, margin=math.nan, measured={"constant_labels": 1})
    if not float(rnn_core.empirical_ntk(p, X).diagonal().max()) > 0.0:
        # every grad_W f(x_i) is 0 (e.g. m = 4 with relu(A X_1) = 0 on all units): GD cannot move W,
        # there is no step size 1 / (m lambda_max) and the loss never decreases: the claim fails
        return Outcome(ok=False, margin=math.inf, measured={"untrainable": 1, "rate_ok": False})
    r = lazy_run(p, X, y, steps=int(s["steps"]), eta_factor=float(cell.get("eta_factor", 1.0)))

    rate_ok = r["rate_ratio"] <= 1.0
    w_ratio = r["w_dist"] / r["w_bound"] if r["w_bound"] > 0 else (0.0 if r["w_dist"] == 0 else math.inf)
    dist_ok = w_ratio <= 1.0
    drift_ratio = r["kernel_drift"] / DRIFT_MAX
    drift_ok = drift_ratio <= 1.0  # NaN fails
    ok = bool(rate_ok and dist_ok and drift_ok)
    margin = max(r["rate_ratio"], w_ratio, drift_ratio) if not math.isnan(drift_ratio) else math.inf

    reached = r["stopped"] == "loss_target"
    measured = {
        "iters_to_1e-3": r["steps"] if reached else math.nan,
        "capped": int(r["stopped"] == "step_cap"),
        "diverged": int(r["stopped"] == "diverged"),
        "steps_run": r["steps"],
        "iters_lin_1e-3": finite_or_nan(r["iters_lin"]) if r["iters_lin"] is not None else math.nan,
        "loss_ratio_T": finite_or_nan(r["losses"][-1] / r["loss0"]) if r["loss0"] > 0 else math.nan,
        "rate_ok": bool(rate_ok),
        "rate_ratio": finite_or_nan(r["rate_ratio"]),
        "rate_divisor": finite_or_nan(r["rate_divisor"]),
        "rho": r["rho"],
        "w_dist": finite_or_nan(r["w_dist"]),
        "w_dist_bound": finite_or_nan(r["w_bound"]),
        "w_dist_lin": finite_or_nan(r["w_dist_lin"]),
        "w_dist_ratio": finite_or_nan(w_ratio),
        "w_dist_rel": finite_or_nan(r["w_dist"] / r["w_norm0"]) if r["w_norm0"] > 0 else math.nan,
        "kernel_drift": finite_or_nan(r["kernel_drift"]),
        "grad_drift": finite_or_nan(r["grad_drift"]),
        "kappa_m": finite_or_nan(r["lambda_max_m"] / r["lambda_min_m"]) if r["lambda_min_m"] > 0 else math.nan,
        "lambda_min_m": r["lambda_min_m"],
        "lambda_min_inf": r["lambda_min_inf"],
        "lambda_max_m": r["lambda_max_m"],
        "eta": r["eta"],
    }
    ts = r["ts"]
    keep = np.unique(np.linspace(0, len(ts) - 1, num=min(MAX_SERIES_ROWS, len(ts))).round().astype(int))
    series = [
        {
            "t": int(ts[k]),
            "loss": finite_or_nan(r["losses"][k]),
            "predicted": finite_or_nan(r["predicted"][k]),
            "linear": finite_or_nan(r["linear"][k]),
        }
        for k in keep
    ]
    constants = {
        # the smallest constants that would make each part hold on this example
        "rate_divisor": finite_or_nan(r["rate_divisor"]),
        "drift_max": finite_or_nan(r["kernel_drift"]),
        "w_dist_factor": finite_or_nan(r["w_dist"] / r["w_dist_lin"]) if r["w_dist_lin"] > 0 else math.nan,
    }
    return Outcome(ok=ok, margin=margin if math.isfinite(margin) else math.inf, measured=measured,
                   series=series, constants=constants)


#: In the normalized regime every sequence shares X_1 = e_d and differs only by steps of norm 0.05: the
#: finite-width kernel H_m(W_0) is numerically singular below about this width (measured at L = 2:
#: lambda_min(H_m) / lambda_min(H_inf) = 0.00-0.13 at m = 256, 0.09-0.74 at m = 1024, 0.71-1.05 at
#: m = 4096, n = 8 and 16, three seeds each), so the rate (a) cannot hold there. The SPEC's CI expectation
#: ("largest width, L = 2") is applied to that regime only from this width on.
NORMALIZED_MIN_WIDTH = 2048


def _must_hold(cell: dict, profile) -> bool:
    if cell.get("control", False) or cell["m"] != profile.max_width or cell["L"] != 2:
        return False
    return cell["regime"] != "normalized" or cell["m"] >= NORMALIZED_MIN_WIDTH


def _memory_bytes(cell: dict, profile) -> int:
    n = _settings(profile)["n"]
    m, L = int(cell["m"]), int(cell["L"])
    # W_0, W_t, gradient and a temporary (m x m each); forward/backward states; kernels are n x n
    return 8 * (5 * m * m + 8 * n * (L + 1) * m + 8 * n * n)


CLAIM = register(
    Claim(
        id="LAZY",
        title="GD on W stays near initialization and converges linearly",
        operationalizes=(
            "the optimization part of the paper (training stays in the NTK regime: W_T close to W_0, the "
            "kernel barely moves, the loss decays geometrically) and the 'iterations' half of its "
            "'iterations and samples almost-polynomial in L'"
        ),
        statement=(
            "Full-batch GD on W, squared loss (1/2) sum_i (f_c - y_i)^2 (train_gd's SUM normalization), centered "
            "output, eta = 1/(m lambda_max(H_m(W_0))): (a) loss_t <= (1 - eta m lambda_min(H_inf)/2)^t loss_0 over "
            "the run; (b) ||W_t - W_0||_F <= 2 sqrt(y^T H_m(W_0)^-1 y / m) (twice the linearized limit "
            "sqrt(y^T (m H_m)^-1 y)); (c) ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op <= 0.1. Reports the iterations "
            "to reach loss <= 1e-3 loss_0 (run and linearized model) and the gradient drift on the training points."
        ),
        pass_rule=(
            "an example passes when (a) holds at every step t >= 1 run, (b) at every step, and (c) at the end; "
            "runs stop at loss <= 1e-3 loss_0 or at the profile's step cap (recorded as capped; then (a)-(c) "
            "are checked over the steps run); margin = max of the three ratios"
        ),
        negative_control=f"eta 10x too large (diverges), or a tiny width m = {TINY_WIDTH}: fails",
        expected=(
            "holds at the largest width for L = 2 (in the normalized regime only from m = 2048 on: below it "
            "H_m(W_0) is numerically singular there); findings elsewhere"
        ),
        axes=("m", "L", "regime"),
        # rho = 1 - eta m lambda_min(H_inf) / rate_divisor; bound (b) = w_dist_factor * sqrt(y^T H_m^-1 y / m)
        declared={"rate_divisor": 2.0, "drift_max": DRIFT_MAX, "w_dist_factor": 2.0},
        cells=_cells,
        strategy=_strategy,
        evaluate=_evaluate,
        delta=0.1,
        must_hold=_must_hold,
        memory_bytes=_memory_bytes,
    )
)
