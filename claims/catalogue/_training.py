"""Shared by GEN-ADD and GEN-KRR: train the RNN "as LAZY" on a recipe's data and predict on test points.

Training is exactly the LAZY claim's setting (claims/catalogue/lazy.py), through rnn_core.train.train_gd
with its default step: full-batch GD on the recurrent matrix W only (A, B fixed), centered output
f_c(W, x) = f(W, x) - f(W_0, x), squared loss with train_gd's SUM normalization

    Loss(W) = (1/2) sum_i (f_c(W, x_i) - y_i)^2,     eta = 1 / (m lambda_max(H_m(W_0))),

on labels y standardized on the training set. A run stops when Loss <= loss_fraction * Loss_0 (a claim
chooses the fraction; LOSS_FRACTION = 1e-3 is LAZY's "converged") or at a step cap; the fit records which
came first (``capped``). FIT_FRACTION = 1e-2 is the generalization claims' "the network fitted its
training set" (Loss_T <= 1e-2 Loss_0); a run that misses it makes their examples inconclusive, never passed.

The trivial predictor of the generalization claims is the training-label mean (``mean_predictor``); on
standardized labels it is 0 up to rounding.

Predictions on many test points are computed in row chunks (a forward pass stores (chunk, L + 1, m)
hidden states), so 2000 test sequences at m = 2048, L = 16 never hold half a gigabyte at once.

The linearized interpolant ``ntk_interpolant`` is the T -> infinity limit of GD on the network
linearized at W_0: f_lin(x) = H_m(x, X) (H_m(X, X) + jI)^-1 y (kernel regression with the empirical NTK
at initialization; rnn_core.linalg.kernel_regression, float64, relative jitter 1e-12). It is what the
lazy-trained centered RNN converges to as m grows and T -> infinity (GEN-KRR measures how close the
network is); GEN-ADD's linearized-interpolant control uses it (see gen_add.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

__all__ = [
    "LOSS_FRACTION",
    "FIT_FRACTION",
    "mean_predictor",
    "LazyFit",
    "train_as_lazy",
    "predict",
    "clipped_loss",
    "rms",
    "ntk_interpolant",
    "chunk_rows",
]

#: the loss reduction that ends a run: Loss <= 1e-3 Loss_0 (SPEC, LAZY: the iterations to reach it)
LOSS_FRACTION = 1e-3
#: the generalization claims' fit criterion: Loss_T <= FIT_FRACTION * Loss_0
FIT_FRACTION = 1e-2
#: a forward pass on a chunk of sequences stores about chunk * (L + 1) * m floats; keep it near 2^23
_CHUNK_FLOATS = 1 << 23


@dataclass(frozen=True)
class LazyFit:
    """A finished training run.

    p0: the parameters at initialization (W_0 = p0.W); W_T: the trained recurrent matrix.
    steps: GD updates performed; stopped: "loss_target" | "step_cap" | "diverged" (train_gd's reason), or
        "no_gradient" when H_m(W_0) = 0 (no unit active on any input: W cannot move, W_T = W_0).
    loss0, loss_T: Loss at t = 0 and at the last recorded step (SUM normalization); eta: the step used.
    run: train_gd's result (the recorded ts, losses, ||W_t - W_0||_F and kernel drift); None without a run.
    """

    p0: object
    W_T: torch.Tensor
    steps: int
    stopped: str
    loss0: float
    loss_T: float
    eta: float
    run: Any = None

    @property
    def capped(self) -> bool:
        return self.stopped == "step_cap"

    @property
    def loss_ratio(self) -> float:
        """Loss_T / Loss_0 (0 when Loss_0 = 0, i.e. all-zero labels; NaN when the run diverged to NaN)."""
        return self.loss_T / self.loss0 if self.loss0 > 0 else 0.0

    @property
    def fitted(self) -> bool:
        """Loss_T <= FIT_FRACTION * Loss_0 (False for NaN)."""
        return bool(self.loss_ratio <= FIT_FRACTION)


def chunk_rows(L: int, m: int) -> int:
    """How many sequences one forward chunk holds (at least 1)."""
    return max(1, _CHUNK_FLOATS // max(1, (L + 1) * m))


def train_as_lazy(
    p0,
    X,
    y,
    *,
    steps: int,
    loss_fraction: float = LOSS_FRACTION,
    record_every: int = 5,
    eta_factor: float = 1.0,
    lam_max: float | None = None,
    track_kernel: bool = False,
) -> LazyFit:
    """Train W from p0.W as the LAZY claim does: full-batch GD on the centered output with step
    eta = eta_factor / (m lambda_max(H_m(W_0))) (train_gd's default at eta_factor = 1); y must already be
    standardized (float64, shape (n,)).

    Stops at Loss <= loss_fraction * Loss_0 (checked every ``record_every`` steps) or after ``steps``.
    ``lam_max``: lambda_max(H_m(W_0)) when the caller has it; ``track_kernel``: record the kernel drift.
    """
    import rnn_core
    from rnn_core.train import lambda_max, train_gd

    y = torch.as_tensor(y, dtype=torch.float64)
    loss0 = 0.5 * float(y @ y)
    lam = lambda_max(rnn_core.empirical_ntk(p0, X)) if lam_max is None else float(lam_max)
    if not lam > 0.0:
        # H_m(W_0) = 0: every unit is dead on every input (possible at tiny widths) or L = 1, so the gradient
        # in W vanishes and GD cannot move: the trained network is the initial one (f_c = 0).
        return LazyFit(p0=p0, W_T=p0.W.clone(), steps=0, stopped="no_gradient", loss0=loss0, loss_T=loss0,
                       eta=math.nan)
    # train_gd's default step 1 / (m lambda_max(H_m(W_0))), the LAZY step (a fault in it shows up here)
    res = train_gd(
        p0,
        X,
        y.to(device=p0.device, dtype=p0.dtype),
        eta=None if eta_factor == 1.0 else eta_factor / (p0.m * lam),
        steps=int(steps),
        loss_target=loss_fraction * loss0,
        record_every=int(record_every),
        track_kernel=track_kernel,
    )
    return LazyFit(
        p0=p0,
        W_T=res.W_T,
        steps=int(res.steps),
        stopped=res.stopped,
        loss0=loss0,
        loss_T=float(res.losses[-1]) if res.losses else math.nan,
        eta=float(res.eta),
        run=res,
    )


def predict(fit_or_p0, W_T: torch.Tensor | None, X) -> torch.Tensor:
    """f_c(W_T, x) = f(W_T, x) - f(W_0, x) for every sequence of X, chunked; float64 CPU tensor (n,).

    ``predict(fit, None, X)`` uses a LazyFit's p0 and W_T; ``predict(p0, W, X)`` any pair."""
    from rnn_core.model import forward

    if isinstance(fit_or_p0, LazyFit):
        p0, W = fit_or_p0.p0, fit_or_p0.W_T
    else:
        p0, W = fit_or_p0, W_T
    X = torch.as_tensor(X)
    n, L = X.shape[0], X.shape[1]
    pT = p0.with_W(W)
    step = chunk_rows(L, p0.m)
    out = []
    with torch.no_grad():
        for s in range(0, n, step):
            xb = X[s : s + step].to(device=p0.device, dtype=p0.dtype)
            out.append((forward(pT, xb).out - forward(p0, xb).out).to(device="cpu", dtype=torch.float64))
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.float64)


def clipped_loss(u, y) -> float:
    """mean_i min(1, |u_i - y_i|): the bounded, 1-Lipschitz loss of the generalization theorem."""
    u = torch.as_tensor(u, dtype=torch.float64).cpu()
    y = torch.as_tensor(y, dtype=torch.float64).cpu()
    if u.shape != y.shape or u.ndim != 1 or u.numel() == 0:
        raise ValueError(f"u and y must be non-empty vectors of the same shape, got {tuple(u.shape)} and {tuple(y.shape)}")
    return float(torch.clamp((u - y).abs(), max=1.0).mean())


def mean_predictor(y_train, n: int) -> torch.Tensor:
    """The trivial predictor: the training-label mean, repeated n times (float64 CPU)."""
    y_train = torch.as_tensor(y_train, dtype=torch.float64).cpu()
    if y_train.ndim != 1 or y_train.numel() == 0:
        raise ValueError(f"y_train must be a non-empty vector, got shape {tuple(y_train.shape)}")
    return torch.full((int(n),), float(y_train.mean()), dtype=torch.float64)


def rms(v) -> float:
    """sqrt(mean v_i^2) of a non-empty vector."""
    v = torch.as_tensor(v, dtype=torch.float64).cpu()
    if v.numel() == 0:
        raise ValueError("rms of an empty vector")
    return float(torch.sqrt((v * v).mean()))


def ntk_interpolant(p0, X, y, X_test, *, rel_jitter: float = 1e-12) -> tuple[torch.Tensor, torch.Tensor]:
    """(f_lin on X, f_lin on X_test) with f_lin(x) = H_m(x, X) (H_m(X, X) + jI)^-1 y, H_m at W_0 = p0.W.

    The limit t -> infinity of GD on the centered network linearized at W_0 (it interpolates y up to the
    jitter j = rel_jitter tr(H_m) / n). The test cross-kernel is built in row chunks."""
    import rnn_core
    from rnn_core.linalg import kernel_regression

    X = torch.as_tensor(X)
    X_test = torch.as_tensor(X_test)
    H = rnn_core.empirical_ntk(p0, X).to(device="cpu", dtype=torch.float64)
    n = X.shape[0]
    if not float(torch.diagonal(H).sum()) > 0.0:
        # H_m = 0 (no active unit): the linearized network cannot move, its prediction stays f_c = 0
        return torch.zeros(n, dtype=torch.float64), torch.zeros(X_test.shape[0], dtype=torch.float64)
    step = max(1, chunk_rows(X.shape[1], p0.m) // 2)
    cross = [
        rnn_core.empirical_ntk(p0, X_test[s : s + step], X).to(device="cpu", dtype=torch.float64)
        for s in range(0, X_test.shape[0], step)
    ]
    K = torch.cat([H, *cross], dim=0)
    pred = kernel_regression(H, torch.as_tensor(y, dtype=torch.float64), K, rel_jitter=rel_jitter).cpu()
    return pred[:n], pred[n:]
