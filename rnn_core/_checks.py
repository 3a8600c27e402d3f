"""Input validation shared by the numerical core.

Every public entry point funnels its arrays through here so that bad input fails with a ValueError
that names the parameter and the allowed range, never with a shape error from inside torch.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["as_sequences", "check_positive_int", "check_pair"]


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    """Return ``value`` as int, or raise naming ``name`` when it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value}")
    return int(value)


def as_sequences(
    X,
    name: str = "X",
    *,
    d: int | None = None,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float64,
) -> torch.Tensor:
    """Validate a batch of sequences of shape (n, L, d) and return it as a tensor.

    Accepts torch tensors and anything numpy can turn into a float array. Rejects wrong rank, empty
    axes (n = 0, L = 0, d = 0), a feature size different from ``d``, and NaN or inf entries.
    """
    if isinstance(X, torch.Tensor):
        t = X
    else:
        try:
            arr = np.asarray(X, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"{name} must be a numeric array of shape (n, L, d): {exc}") from None
        t = torch.from_numpy(arr)
    if t.ndim != 3:
        raise ValueError(f"{name} must have shape (n, L, d) (3 axes), got shape {tuple(t.shape)}")
    n, L, dd = t.shape
    if n < 1:
        raise ValueError(f"{name} must hold at least one sequence (n >= 1), got shape {tuple(t.shape)}")
    if L < 1:
        raise ValueError(f"{name}: sequence length L must be >= 1, got shape {tuple(t.shape)}")
    if dd < 1:
        raise ValueError(f"{name}: input dimension d must be >= 1, got shape {tuple(t.shape)}")
    if d is not None and dd != d:
        raise ValueError(f"{name} has input dimension d = {dd}, but the network expects d = {d}")
    if not (t.is_floating_point() or t.dtype in (torch.int32, torch.int64, torch.bool)):
        raise ValueError(f"{name} must be real-valued, got dtype {t.dtype}")
    t = t.to(device=device if device is not None else t.device, dtype=dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or inf entries; every entry must be finite")
    return t


def check_pair(X: torch.Tensor, X2: torch.Tensor, names=("X", "X2")) -> None:
    """Two batches compared by a kernel must share L and d."""
    if X.shape[1:] != X2.shape[1:]:
        raise ValueError(
            f"{names[0]} and {names[1]} must share (L, d); got {tuple(X.shape[1:])} and {tuple(X2.shape[1:])}"
        )
