"""Float64 helpers for symmetric positive semi-definite (PSD) kernel matrices.

Every routine accepts a torch tensor (any device) or a numpy array, computes in float64 and returns
float64 torch tensors on the input's device (numpy input -> CPU).

Jitter. Solves use H_j = H + j I with j = rel_jitter * tr(H) / n, i.e. a fixed fraction of the mean
eigenvalue. Because j scales with H, the solve is exactly equivariant under H -> c H, so the
scale-free complexity y^T H^-1 y * tr(H) / n does not depend on the kernel's scale. The default
rel_jitter = 1e-12 sits above float64 rounding of a Gram matrix (~1e-16 * n relative to lambda_max) for
the sizes used here yet far below the spectra the claims test (lambda_min / mean eigenvalue >= 1e-8).

Memory. A solve makes ONE n x n float64 copy (H + j I, factored in place by torch.linalg.cholesky_ex
with out= aliasing its input, on every device). For n = 16384 one matrix is 2 GiB, so a solve holds
one copy besides the caller's H.
No explicit inverse is ever formed. When Cholesky fails (H indefinite beyond the jitter) the routines
fall back to an eigendecomposition with eigenvalues floored at j, documented per function.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

__all__ = [
    "as_f64",
    "eigvalsh_sym",
    "lambda_min_max",
    "condition_number",
    "jitter",
    "solve_psd",
    "quadratic_form",
    "scale_free_quadratic_form",
    "kernel_regression",
]


def as_f64(a, name: str = "H", *, device: torch.device | None = None) -> torch.Tensor:
    """torch float64 view/copy of ``a`` on its own device (numpy -> CPU); rejects NaN / inf."""
    if isinstance(a, torch.Tensor):
        t = a.detach().to(dtype=torch.float64, device=device if device is not None else a.device)
    else:
        try:
            t = torch.from_numpy(np.asarray(a, dtype=np.float64))
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array: {exc}") from None
        if device is not None:
            t = t.to(device)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf; every entry must be finite")
    return t


def _square(H, name: str = "H") -> torch.Tensor:
    t = as_f64(H, name)
    if t.ndim != 2 or t.shape[0] != t.shape[1] or t.shape[0] < 1:
        raise ValueError(f"{name} must be a non-empty square matrix (n, n), got shape {tuple(t.shape)}")
    return t


def _rel_jitter(value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"rel_jitter must be a finite real number >= 0, got {value!r}")
    return float(value)


def eigvalsh_sym(H) -> torch.Tensor:
    """Ascending eigenvalues of the symmetric matrix H (float64; reads the lower triangle, as LAPACK)."""
    return torch.linalg.eigvalsh(_square(H))


def lambda_min_max(H) -> tuple[float, float]:
    """(lambda_min, lambda_max) of the symmetric matrix H."""
    ev = eigvalsh_sym(H)
    return float(ev[0]), float(ev[-1])


def condition_number(H) -> float:
    """lambda_max / lambda_min of a PSD matrix; +inf when lambda_min <= 0 (singular to rounding)."""
    lo, hi = lambda_min_max(H)
    if lo <= 0.0:
        return math.inf
    return hi / lo


def jitter(H, rel_jitter: float = 1e-12) -> float:
    """The absolute jitter j = rel_jitter * tr(H) / n added to the diagonal before a solve."""
    t = _square(H)
    rel = _rel_jitter(rel_jitter)
    return rel * max(float(torch.diagonal(t).sum()), 0.0) / t.shape[0]


def _as_rhs(y, n: int, device, name: str = "y") -> torch.Tensor:
    t = as_f64(y, name, device=device)
    if t.ndim not in (1, 2) or t.shape[0] != n:
        raise ValueError(f"{name} must have shape (n,) or (n, k) with n = {n}, got shape {tuple(t.shape)}")
    return t


class _Factor:
    """Cholesky factor of H + jI (lower), or an eigen-fallback when Cholesky fails."""

    def __init__(self, H: torch.Tensor, rel_jitter: float) -> None:
        n = H.shape[0]
        self.j = _rel_jitter(rel_jitter) * max(float(torch.diagonal(H).sum()), 0.0) / n
        self.device = H.device
        self.chol = None
        self.evals = self.evecs = None
        Hj = H.clone()  # the one n x n copy, factored in place below
        Hj.diagonal().add_(self.j)
        info = torch.empty((), dtype=torch.int32, device=H.device)
        # torch's LAPACK/cuSOLVER on every device: it honours torch.set_num_threads, which the runner
        # sets per worker (scipy's OpenBLAS ignored it and oversubscribed the cores: a 256 x 256 factor
        # took 0.19 s instead of 0.006 s with two workers on 2 cores).
        torch.linalg.cholesky_ex(Hj, out=(Hj, info))
        if int(info) == 0:
            self.chol = Hj
            return
        del Hj
        # Fallback: H is indefinite beyond the jitter. Use eigenvalues floored at j (a PSD projection).
        ev, V = torch.linalg.eigh(H)
        floor = self.j if self.j > 0 else torch.finfo(torch.float64).tiny
        self.evals = ev.clamp_min(floor)
        self.evecs = V

    def solve(self, b: torch.Tensor) -> torch.Tensor:
        if self.chol is not None:
            return torch.cholesky_solve(b if b.ndim == 2 else b[:, None], self.chol).reshape(b.shape)
        coef = self.evecs.T @ b
        coef = coef / (self.evals if b.ndim == 1 else self.evals[:, None])
        return self.evecs @ coef

    def half_solve(self, b: torch.Tensor) -> torch.Tensor:
        """z with ||z||^2 = b^T (H + jI)^-1 b (triangular solve: more accurate than b . solve(b))."""
        if self.chol is not None:
            rhs = b if b.ndim == 2 else b[:, None]
            return torch.linalg.solve_triangular(self.chol, rhs, upper=False).reshape(b.shape)
        coef = self.evecs.T @ b
        return coef / (self.evals.sqrt() if b.ndim == 1 else self.evals.sqrt()[:, None])


def solve_psd(H, y, *, rel_jitter: float = 1e-12) -> torch.Tensor:
    """alpha = (H + jI)^-1 y via Cholesky (see the module docstring for j and the fallback)."""
    Ht = _square(H)
    yt = _as_rhs(y, Ht.shape[0], Ht.device)
    return _Factor(Ht, rel_jitter).solve(yt)


def quadratic_form(H, y, *, rel_jitter: float = 1e-12) -> float:
    """y^T H^-1 y for a PSD matrix H, computed as ||L^-1 y||^2 with L L^T = H + jI (never an inverse).

    j = rel_jitter * tr(H) / n. For a singular H (a parallel pair in the data) the value is finite but of
    order ||y_null||^2 / j, i.e. huge: that is the documented reading of "infinite complexity".
    y of shape (n, k) returns the trace y^T H^-1 y summed over the k columns.
    """
    Ht = _square(H)
    yt = _as_rhs(y, Ht.shape[0], Ht.device)
    z = _Factor(Ht, rel_jitter).half_solve(yt)
    return float((z * z).sum())


def scale_free_quadratic_form(H, y, *, rel_jitter: float = 1e-12) -> float:
    """y^T H^-1 y * tr(H) / n: invariant under H -> c H (c > 0), unlike y^T H^-1 y itself.

    This is the kernel-scale-free complexity behind GEN-ADD's bound (B uses sqrt of it divided by n)
    and RAND-LABEL's C(y) = y^T H^-1 y tr(H) / n^2 (this value divided by n).
    """
    Ht = _square(H)
    tr = float(torch.diagonal(Ht).sum())
    if not tr > 0.0:
        raise ValueError(f"H must have a positive trace for the scale-free complexity, got tr(H) = {tr}")
    return quadratic_form(Ht, y, rel_jitter=rel_jitter) * tr / Ht.shape[0]


def kernel_regression(K_train, y, K_test_train, *, rel_jitter: float = 1e-12) -> torch.Tensor:
    """Kernel ridge-less regression predictions  K_test_train (K_train + jI)^-1 y.

    K_train (n, n) PSD, y (n,) or (n, k), K_test_train (n_test, n). Returns (n_test,) or (n_test, k),
    float64 on K_train's device. With j -> 0 this is the interpolating NTK predictor of GEN-KRR.
    """
    K = _square(K_train, "K_train")
    n = K.shape[0]
    yt = _as_rhs(y, n, K.device)
    Kt = as_f64(K_test_train, "K_test_train", device=K.device)
    if Kt.ndim != 2 or Kt.shape[1] != n:
        raise ValueError(f"K_test_train must have shape (n_test, n) with n = {n}, got shape {tuple(Kt.shape)}")
    alpha = _Factor(K, rel_jitter).solve(yt)
    return Kt @ alpha
