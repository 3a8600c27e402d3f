"""Small numerical conventions shared by the core and the claims.

:func:`guarded_ratio` is the suite's one guarded division: num / den where den != 0; where den == 0 the
result is +inf for num > 0 and -inf for num < 0 (a genuine blow-up, e.g. a violated bound), and the
caller's stated ``zero_by_zero`` for 0 / 0. Callers choose 0 / 0 explicitly: NaN where the ratio carries
no information and must be left out of minima and maxima (||h_l||^2 / q_l for an all-zero prefix), 0
where "no change over nothing" is the honest value (a relative change ||h' - h|| / ||h|| when both are 0).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

__all__ = ["guarded_ratio"]


def guarded_ratio(num: Any, den: Any, *, zero_by_zero: float) -> Any:
    """num / den with den == 0 giving +-inf (num != 0) or ``zero_by_zero`` (num == 0).

    Floats give a float; numpy arrays a float64 array; torch tensors a tensor of the promoted floating
    dtype on num's device (broadcasting as usual)."""
    if isinstance(num, torch.Tensor) or isinstance(den, torch.Tensor):
        # a non-tensor side takes the tensor side's dtype (a Python scalar does not promote float32)
        t = num if isinstance(num, torch.Tensor) else den
        like = dict(dtype=t.dtype if t.dtype.is_floating_point else torch.float64, device=t.device)
        n = num if isinstance(num, torch.Tensor) else torch.as_tensor(num, **like)
        d = den if isinstance(den, torch.Tensor) else torch.as_tensor(den, **like)
        dtype = torch.promote_types(torch.promote_types(n.dtype, d.dtype), torch.float32)
        n, d = torch.broadcast_tensors(n.to(dtype), d.to(device=n.device, dtype=dtype))
        out = n / torch.where(d != 0, d, torch.ones_like(d))
        at_zero = torch.where(n > 0, torch.full_like(n, math.inf),
                              torch.where(n < 0, torch.full_like(n, -math.inf), torch.full_like(n, zero_by_zero)))
        return torch.where(d != 0, out, at_zero)
    if np.ndim(num) == 0 and np.ndim(den) == 0:
        a, b = float(num), float(den)
        if b != 0:
            return a / b
        return math.inf if a > 0 else (-math.inf if a < 0 else float(zero_by_zero))
    a, b = np.broadcast_arrays(np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64))
    with np.errstate(divide="ignore", invalid="ignore"):
        out = a / np.where(b != 0, b, 1.0)
    at_zero = np.where(a > 0, np.inf, np.where(a < 0, -np.inf, zero_by_zero))
    return np.where(b != 0, out, at_zero)
