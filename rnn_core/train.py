"""Full-batch gradient descent on the recurrent matrix W (A and B fixed), centered output.

Normalization (a SUM, not a mean, over the n training sequences):

    f_c(W, x) = f(W, x) - f(W_0, x)                      (centered output, f_c(W_0, .) = 0)
    Loss(W)   = (1/2) sum_i (f_c(W, x_i) - y_i)^2
    grad_W    = sum_i r_i grad_W f(x_i) = sum_i r_i sum_l delta_l(x_i) h_{l-1}(x_i)^T,   r = f_c - y
    W_{t+1}   = W_t - eta grad_W Loss(W_t)

The gradient is one (m, nL) x (nL, m) matmul of the residual-weighted deltas against the hidden states
(the l = 1 term is skipped: h_0 = 0), never a per-sample loop and never autograd. The backward pass
is linear in delta_L, so it starts from r_i D_L B^T and yields r_i delta_l(x_i) directly; the update
W <- W - eta deltas^T h_prev is one in-place addmm_, and the hidden states and deltas of every step are
written into one :class:`rnn_core.model.RNNPass` allocated once per run.

Linearization. With J the (n, m^2) Jacobian of f in W and H_m = (1/m) J J^T (the empirical NTK of
rnn_core.ntk), one step moves the outputs by f_{t+1} - f_t ~ -eta J J^T r_t = -eta m H_m r_t, so
r_{t+1} ~ (I - eta m H_m) r_t. The default step eta = 1 / (m lambda_max(H_m(W_0))) puts the spectrum of
I - eta m H_m in [0, 1 - eta m lambda_min], hence

    loss_t <= (1 - eta m lambda_min)^(2t) loss_0 <= (1 - eta m lambda_min / 2)^t loss_0,

the rate of SPEC's LAZY claim. A step 10x larger gives the top eigendirection the factor 1 - 10 = -9:
the linear model, and in practice the network, diverges.

Precision: the network runs in the dtype of its parameters. With float32 parameters the updates are
accumulated in a float64 copy of W (returned as W_T) and the float32 network uses it rounded: lazy
training moves each entry of W by far less than its float32 spacing over a run, so float32 W alone
would lose most of the displacement.

Host synchronization: the only device-to-host transfer inside the loop is the loss scalar (and the
distance ||W_t - W_0||_F) every ``record_every`` steps; stopping rules (loss target, divergence) are
checked at those recorded steps.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import torch

from rnn_core._checks import as_sequences, check_positive_int
from rnn_core.model import RNNParams, RNNPass, _backward_into, _forward_into, forward
from rnn_core.ntk import empirical_ntk

__all__ = ["TrainResult", "train_gd", "predict_centered", "loss_gradient", "default_eta", "lambda_max"]

#: a run is "diverged" when its loss is not finite or exceeds this multiple of loss_0 (the linearized
#: dynamics with the default step never increase the loss, so 1e6 is far outside lazy training)
DIVERGENCE_FACTOR = 1e6
# Above this n, lambda_max comes from Lanczos (scipy eigsh) instead of a full eigendecomposition.
_DENSE_EIG_MAX_N = 4096


@dataclass
class TrainResult:
    """Outcome of :func:`train_gd`.

    losses: Loss(W_t) at the recorded steps ts (t = 0, record_every, 2 record_every, ..., and the last t).
    w_dist: ||W_t - W_0||_F at the same steps.
    W_T: the final recurrent matrix on the parameters' device, float64: for a float32 network it is the
        float64 master copy that training accumulates (the network runs on it rounded to float32).
    steps: number of GD updates performed (T).
    stopped: "loss_target" | "step_cap" | "diverged".
    eta: the step used.
    kernel_drift: ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op when track_kernel, else None.
    ts: the step indices of the records.
    lambda_max_0: lambda_max(H_m(W_0)) when it was computed (default eta or track_kernel), else None.
    """

    losses: list[float]
    w_dist: list[float]
    W_T: torch.Tensor
    steps: int
    stopped: str
    eta: float
    kernel_drift: float | None = None
    ts: list[int] = field(default_factory=list)
    lambda_max_0: float | None = None


def lambda_max(H: torch.Tensor) -> float:
    """Largest eigenvalue of a symmetric float64 matrix (dense for n <= 4096, Lanczos above)."""
    n = H.shape[0]
    if n <= _DENSE_EIG_MAX_N:
        return float(torch.linalg.eigvalsh(H.to(torch.float64))[-1])
    import scipy.sparse.linalg

    vals = scipy.sparse.linalg.eigsh(H.detach().cpu().numpy().astype(np.float64), k=1, which="LA", tol=1e-10)[0]
    return float(vals[-1])


def default_eta(p: RNNParams, X, *, H0: torch.Tensor | None = None) -> float:
    """eta = 1 / (m lambda_max(H_m(W_0))) for the training inputs X (SPEC's LAZY step)."""
    H0 = empirical_ntk(p, X) if H0 is None else H0
    lam = lambda_max(H0)
    if not lam > 0.0:
        raise ValueError(
            f"lambda_max(H_m(W_0)) = {lam} is not positive (e.g. L = 1, where W never acts); no default step exists"
        )
    return 1.0 / (p.m * lam)


def _labels(y, n: int, device, dtype) -> torch.Tensor:
    t = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y, dtype=np.float64))
    if t.ndim != 1 or t.shape[0] != n:
        raise ValueError(f"y must have shape (n,) with n = {n}, got shape {tuple(t.shape)}")
    t = t.detach().to(device=device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError("y contains NaN or inf; labels must be finite")
    return t


def loss_gradient(p: RNNParams, X: torch.Tensor, y: torch.Tensor, f0: torch.Tensor):
    """(loss, grad, residual) at W = p.W for the centered squared loss; tensors stay on the device.

    loss = (1/2) ||r||^2 with r = f(W, X) - f0 - y; grad = sum_i r_i sum_{l>=2} delta_l(x_i) h_{l-1}(x_i)^T,
    one (m, (L-1) n) x ((L-1) n, m) matmul of the residual-scaled deltas against the hidden states.
    X must already be a validated (n, L, d) tensor on p's device and dtype.
    """
    n, L, _ = X.shape
    run = RNNPass.allocate(n, L, p.m, p.device, p.dtype)
    r = _forward_into(p, X, run) - f0 - y
    if L == 1:
        return 0.5 * (r @ r), torch.zeros_like(p.W), r  # h_0 = 0: W does not act on a length-1 sequence
    _backward_into(p, run, residual=r)
    grad = run.deltas.view(-1, p.m).T @ run.h_prev.view(-1, p.m)
    return 0.5 * (r @ r), grad, r


def _check_real(value, name: str, *, positive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite real number{' > 0' if positive else ' >= 0'}, got {value!r}")
    if (positive and value <= 0) or value < 0:
        raise ValueError(f"{name} must be a finite real number{' > 0' if positive else ' >= 0'}, got {value}")
    return float(value)


def train_gd(
    p: RNNParams,
    X,
    y,
    *,
    eta: float | None = None,
    steps: int = 1000,
    loss_target: float | None = None,
    record_every: int = 1,
    track_kernel: bool = False,
) -> TrainResult:
    """Full-batch GD on W from W_0 = p.W with the centered output (see the module docstring).

    eta: step; None -> 1 / (m lambda_max(H_m(W_0))).
    steps: cap on the number of updates (>= 0).
    loss_target: stop once Loss(W_t) <= loss_target (absolute; checked at recorded steps).
    record_every: record loss and ||W_t - W_0||_F every this many steps (>= 1), plus the final step.
    track_kernel: also return kernel_drift = ||H_m(W_T) - H_m(W_0)||_op / ||H_m(W_0)||_op.
    Divergence: a recorded loss that is not finite or exceeds 1e6 loss_0 stops the run ("diverged").
    """
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    n = X.shape[0]
    yt = _labels(y, n, p.device, p.dtype)
    steps = check_positive_int(steps, "steps", minimum=0)
    record_every = check_positive_int(record_every, "record_every")
    if loss_target is not None:
        loss_target = _check_real(loss_target, "loss_target", positive=False)

    H0 = None
    lam0 = None
    if eta is None or track_kernel:
        H0 = empirical_ntk(p, X)
        lam0 = lambda_max(H0)
    if eta is None:
        eta = default_eta(p, X, H0=H0)
    eta = _check_real(eta, "eta", positive=True)

    W0 = p.W
    # float32 network: the weights are accumulated in a float64 master copy and rounded into the
    # network's float32 copy after every update (float32 W cannot hold the small lazy-training updates:
    # an entry of W is ~ sqrt(2/m), its float32 spacing ~ 1e-9, comparable to one step's change)
    master = p.dtype != torch.float64
    W = W0.to(torch.float64) if master else W0.clone()
    W_net = W0.clone() if master else W
    L = X.shape[1]
    m = p.m
    # One pass's storage for the whole run: every step overwrites the hidden states and deltas in place.
    run = RNNPass.allocate(n, L, m, p.device, p.dtype)
    f0 = _forward_into(p, X, run).clone()
    delta_rows = run.deltas.view(n * (L - 1), m)  # r_i delta_l(x_i), l = 2..L, after the backward
    h_prev_rows = run.h_prev.view(n * (L - 1), m)  # h_{l-1}(x_i)
    losses: list[float] = []
    dists: list[float] = []
    ts: list[int] = []
    stopped = "step_cap"
    loss0 = None
    t = 0
    while True:
        cur = p.with_W(W_net)
        r = _forward_into(cur, X, run).sub_(f0).sub_(yt)
        loss = 0.5 * (r @ r)
        if t % record_every == 0 or t == steps:
            # the one host sync per recorded step: loss and distance travel together
            lv, dist = torch.stack([loss.to(torch.float64), torch.linalg.norm(W - W0).to(torch.float64)]).tolist()
            losses.append(lv)
            dists.append(dist)
            ts.append(t)
            if loss0 is None:
                loss0 = lv
            if not math.isfinite(lv) or lv > DIVERGENCE_FACTOR * max(loss0, np.finfo(float).tiny):
                stopped = "diverged"
                break
            if loss_target is not None and lv <= loss_target:
                stopped = "loss_target"
                break
        if t == steps:
            break
        if L >= 2:  # h_0 = 0: W does not act on a length-1 sequence, the gradient is 0
            # deltas scaled by the residual (backward is linear in delta_L), then
            # W <- W - eta sum_{i, l >= 2} r_i delta_l(x_i) h_{l-1}(x_i)^T as one fused addmm_
            _backward_into(cur, run, residual=r)
            if master:
                W.add_(delta_rows.T @ h_prev_rows, alpha=-eta)
                W_net.copy_(W)
            else:
                W.addmm_(delta_rows.T, h_prev_rows, alpha=-eta)
        t += 1

    drift = None
    if track_kernel:
        HT = empirical_ntk(p.with_W(W), X)
        ev0 = torch.linalg.eigvalsh(H0)
        evd = torch.linalg.eigvalsh(HT - H0)
        norm0 = float(ev0.abs().max())
        drift = float(evd.abs().max()) / norm0 if norm0 > 0 else math.inf
    return TrainResult(
        losses=losses,
        w_dist=dists,
        W_T=W,
        steps=t,
        stopped=stopped,
        eta=eta,
        kernel_drift=drift,
        ts=ts,
        lambda_max_0=lam0,
    )


def predict_centered(p0: RNNParams, W: torch.Tensor, X) -> torch.Tensor:
    """f_c(W, x) = f(W, x) - f(W_0, x) for every sequence of X, with W_0 = p0.W: shape (n,)."""
    X = as_sequences(X, "X", d=p0.d, device=p0.device, dtype=p0.dtype)
    return forward(p0.with_W(W), X).out - forward(p0, X).out
