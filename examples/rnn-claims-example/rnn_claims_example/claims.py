"""LRELU-FWD: forward stability at initialization of a leaky-ReLU Elman RNN.

The RNN is h_0 = 0, h_l = phi_a(W h_{l-1} + A X_l) for l = 1..L, with phi_a(z) = max(z, a z) the leaky
ReLU of slope a in [0, 1), width m, W (m x m) and A (m x d) with i.i.d. N(0, v/m) entries.

Why v = 2 / (1 + a^2). For a centred Gaussian z ~ N(0, s^2), E[phi_a(z)^2] = (1 + a^2) s^2 / 2 (half
of the mass is kept, the other half is scaled by a). Given h_{l-1} and X_l, each coordinate of the
pre-activation W h_{l-1} + A X_l is N(0, (v/m) (||h_{l-1}||^2 + ||X_l||^2)), so

    E ||h_l||^2 = m (1 + a^2) / 2 (v/m) (||h_{l-1}||^2 + ||X_l||^2) = ||h_{l-1}||^2 + ||X_l||^2

exactly when v = 2 / (1 + a^2) (the variance of He et al., "Delving deep into rectifiers", 2015, for
leaky rectifiers; a = 0 is the ReLU RNN of the built-in claim FWD). Unrolling, the infinite-width limit
of ||h_l||^2 is q_l = sum_{k<=l} ||X_k||^2. Since phi_a is positively homogeneous the ratio
||h_l||^2 / q_l does not depend on the scale of the input, so no small-norm condition is needed.

Claim: for every layer l and every input, 1/2 <= ||h_l||^2 / q_l <= 2 at random initialization.
Measured per example (n sequences from rnn_core.data): the (n, L) ratios; ratio_min, ratio_max; the
measured constant c = max(ratio_max, 1 / ratio_min) against the declared c = 2 (margin c / 2). Series:
per layer the min and the max over the batch, rows {"l", "stat", "ratio"}.

Negative control: the ReLU variance v = 2 kept while the activation is leaky (the mistake of an init
that ignores the slope). Each step then multiplies the carried second moment by 1 + a^2, so
E ||h_l||^2 = sum_k (1 + a^2)^(l-k+1) ||X_k||^2. With a = 1/2 (factor 5/4) the unit regime (all
||X_k|| = 1) leaves [1/2, 2] at l = 6 (sum_{j<=6} 1.25^j / 6 = 2.35) and the normalized regime (q_l
dominated by ||X_1|| = 1) at l = 4 (1.25^4 = 2.44); the control cells run at L = 8 (3.1 and 6.0), at
the largest width of the profile, so that a failure is the wrong variance and not finite width.

Expected: holds at the largest width for L = 2 (asserted). At the largest width and longer L the
infinite-width statement still says it holds, but the ratio is a product of L random factors whose
relative spread grows like sqrt(L / m), so those cells are reported and not asserted (must_hold gives
the reason). At smaller widths a failure is a finding about finite width, not a test failure.

Precision: float32 networks are allowed (``precision="float32"``): rounding moves a ratio by about
1e-6 per step, nothing against a factor-2 band; ``--dtype float64`` forces float64.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from claims.base import Claim, Context, NotAsserted, Outcome, finite_or_nan
from claims.registry import Registry
from rnn_claims_example.figures import ratio_per_layer

__all__ = [
    "REGISTRY", "CLAIM", "C_DECLARED", "CONTROL_SLOPE", "RELU_VAR", "SETTINGS", "preserving_variance",
    "variance", "init_weights", "forward_ratios",
]

#: this package's catalogue; the entry point rnn_claims.catalogues names it
REGISTRY = Registry("rnn_claims_example.claims:REGISTRY")

C_DECLARED = 2.0
#: the control keeps the ReLU variance (v m = 2) while the activation has slope CONTROL_SLOPE
RELU_VAR = 2.0
CONTROL_SLOPE = 0.5
_ALL_REGIMES = ("normalized", "unit", "unnormalized")

#: per-profile settings, read through CLAIM.settings_for(profile) (an unknown profile raises)
SETTINGS: dict[str, dict[str, Any]] = {
    "smoke": {"n": 6, "widths": (64, 256), "lengths": (2, 4), "slopes": (0.2, 0.5),
              "regimes": ("unit", "normalized"), "control_length": 8},
    "quick": {"n": 8, "widths": (128, 512, 2048), "lengths": (2, 4, 8), "slopes": (0.2, 0.5),
              "regimes": _ALL_REGIMES, "control_length": 8},
    "standard": {"n": 16, "widths": (256, 1024, 4096), "lengths": (2, 4, 8, 16), "slopes": (0.01, 0.2, 0.5),
                 "regimes": _ALL_REGIMES, "control_length": 8},
    "full": {"n": 16, "widths": (512, 2048, 8192, 16384), "lengths": (2, 4, 8, 16, 32),
             "slopes": (0.01, 0.2, 0.5), "regimes": _ALL_REGIMES, "control_length": 8},
}


def preserving_variance(a: float) -> float:
    """v = 2 / (1 + a^2): W, A ~ N(0, v/m) keep E ||h_l||^2 = q_l for the leaky ReLU of slope a."""
    return 2.0 / (1.0 + a * a)


def variance(cell: dict) -> float:
    """v of the cell (entries N(0, v/m)): the cell's "v" (controls), else the preserving variance."""
    a = float(cell["a"])
    if not (0.0 <= a < 1.0):
        raise ValueError(f"slope a must lie in [0, 1), got {cell['a']!r}")
    v = float(cell.get("v", preserving_variance(a)))
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"variance v must be a finite number > 0, got {cell.get('v')!r}")
    return v


def init_weights(m: int, d: int, v: float, seed: int, *, device: Any = "cpu",
                 dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """W (m x m) and A (m x d), entries N(0, v/m), drawn on the CPU in float64 from ``seed`` (the same
    numbers on every device) and moved to ``device`` / ``dtype``."""
    gen = torch.Generator().manual_seed(int(seed))
    std = math.sqrt(v / m)
    W = torch.empty((m, m), device=device, dtype=dtype)
    rows = max(1, (1 << 22) // m)  # row blocks of about 32 MiB
    for start in range(0, m, rows):
        stop = min(m, start + rows)
        W[start:stop] = (torch.randn((stop - start, m), generator=gen, dtype=torch.float64) * std).to(device, dtype)
    A = (torch.randn((m, d), generator=gen, dtype=torch.float64) * std).to(device, dtype)
    return W, A


def forward_ratios(W: torch.Tensor, A: torch.Tensor, X: torch.Tensor, a: float) -> torch.Tensor:
    """(n, L) float64 matrix of ||h_l(x_i)||^2 / q_l(x_i) for the leaky-ReLU RNN (0/0 -> NaN, x/0 -> inf).

    X: (n, L, d) inputs, cast to W's device and dtype."""
    X = X.to(device=W.device, dtype=W.dtype)
    n, L, _ = X.shape
    h = torch.zeros((n, W.shape[0]), device=W.device, dtype=W.dtype)
    h2 = torch.empty((n, L), dtype=torch.float64, device=W.device)
    for l in range(L):
        h = torch.nn.functional.leaky_relu(h @ W.T + X[:, l] @ A.T, negative_slope=a)
        h2[:, l] = h.to(torch.float64).pow(2).sum(dim=1)
    q = torch.cumsum(X.to(torch.float64).pow(2).sum(dim=2), dim=1)
    safe = torch.where(q > 0, q, torch.ones_like(q))
    r = h2 / safe
    undefined = torch.where(h2 > 0, torch.full_like(r, math.inf), torch.full_like(r, math.nan))
    return torch.where(q > 0, r, undefined)


def _settings(profile: Any):
    return CLAIM.settings_for(profile)


def cells(profile: Any) -> list[dict]:
    """Every (m, L, regime, a) of this claim's settings, plus one control per regime at the largest
    width, L = control_length, a = CONTROL_SLOPE and the ReLU variance v = 2."""
    s = _settings(profile)
    out = [{"m": int(m), "L": int(L), "regime": regime, "a": float(a)}
           for regime in s["regimes"] for a in s["slopes"] for L in s["lengths"] for m in s["widths"]]
    out += [{"m": int(max(s["widths"])), "L": int(s["control_length"]), "regime": regime,
             "a": CONTROL_SLOPE, "v": RELU_VAR, "control": True} for regime in s["regimes"]]
    return out


def strategy(cell: dict, profile: Any):
    """Recipes (rnn_core.data.Recipe) with n from the settings and the cell's L and regime; d, the
    directions and the seeds are drawn by hypothesis (failures shrink toward d = 2, sphere, seed 0);
    the target is unused and pinned."""
    from claims.strategies import recipes
    from rnn_core.targets import TargetSpec

    return recipes(n=int(_settings(profile)["n"]), L=int(cell["L"]), regime=cell["regime"],
                   target=TargetSpec(family="random", seed=0))


def evaluate(cell: dict, recipe: Any, ctx: Context) -> Outcome:
    """One example: the ratios of the recipe's n training sequences at one random initialization."""
    from rnn_core.data import make_dataset

    X, _ = make_dataset(recipe)
    a = float(cell["a"])
    W, A = init_weights(int(cell["m"]), recipe.d, variance(cell), recipe.init_seed, device=ctx.device, dtype=ctx.dtype)
    r = forward_ratios(W, A, X, a)
    defined = r[~torch.isnan(r)]
    if defined.numel() == 0:
        return Outcome(ok=None, margin=math.nan, reason="every ratio is 0/0 (all-zero inputs)")
    r_min, r_max = float(defined.min()), float(defined.max())
    c_meas = max(r_max, 1.0 / r_min if r_min > 0 else math.inf)
    series = []
    for l in range(r.shape[1]):
        col = r[:, l][~torch.isnan(r[:, l])]
        if col.numel():
            series.append({"l": l + 1, "stat": "min", "ratio": finite_or_nan(col.min())})
            series.append({"l": l + 1, "stat": "max", "ratio": finite_or_nan(col.max())})
    return Outcome(
        ok=bool(c_meas <= C_DECLARED),
        margin=finite_or_nan(c_meas / C_DECLARED),
        measured={"ratio_min": finite_or_nan(r_min), "ratio_max": finite_or_nan(r_max), "c": finite_or_nan(c_meas)},
        series=series,
        constants={"c": finite_or_nan(c_meas)},
        reason="" if c_meas <= C_DECLARED else f"ratio outside [1/2, 2]: min {r_min:.3g}, max {r_max:.3g}",
    )


def must_hold(cell: dict, profile: Any) -> bool | NotAsserted:
    """Asserted at the largest width for L = 2; at the largest width and longer L expected but not
    asserted (the reason string); elsewhere a finding."""
    if cell["m"] != max(_settings(profile)["widths"]):
        return False
    if cell["L"] == 2:
        return True
    return NotAsserted(f"finite-width spread: ||h_L||^2 / q_L is a product of L = {cell['L']} random factors whose "
                       f"relative spread grows like sqrt(L / m), so at m = {cell['m']} a few examples may leave [1/2, 2] "
                       "although the infinite-width limit is 1")


def memory_bytes(cell: dict, profile: Any) -> int:
    """Peak bytes of one example, roughly: W and A (plus one float64 row block while drawing), the
    hidden state and the inputs."""
    m, L, n, d = int(cell["m"]), int(cell["L"]), int(_settings(profile)["n"]), 16
    return int(1.25 * (8 * (m * m + m * d + 3 * n * m + n * L * d) + 8 * (1 << 22))) + (1 << 20)


def cost(cell: dict, profile: Any) -> float:
    """Seconds of one example on one CPU core, roughly: drawing W (about 1e-8 s per entry), L
    matrix products of (n x m) by (m x m) at about 2 GFLOP/s, and a few ms of drawing and data."""
    m, L, n = int(cell["m"]), int(cell["L"]), int(_settings(profile)["n"])
    return 3e-3 + 1e-8 * m * m + 2.0 * n * L * m * (m + 8) / 2e9


CLAIM = REGISTRY.register(
    Claim.from_module(
        __name__,
        id="LRELU-FWD",
        title="Forward stability at initialization, leaky-ReLU RNN",
        operationalizes="the second-moment-preserving initialization of leaky rectifiers (He et al. 2015: "
        "Var = 2 / ((1 + a^2) m)) carried over to the Elman RNN: ||h_l||^2 tracks q_l = sum_{k<=l} ||X_k||^2",
        statement="For a leaky-ReLU Elman RNN of slope a with W, A ~ N(0, 2 / ((1 + a^2) m)), every layer l "
        "and every input x: 1/2 <= ||h_l(x)||^2 / q_l(x) <= 2 at random initialization.",
        pass_rule="every ratio ||h_l||^2 / q_l over the n inputs and l = 1..L lies in [1/2, 2] (measured "
        "constant c = max(ratio_max, 1/ratio_min) <= 2); margin c / 2",
        negative_control="the ReLU variance 2/m kept with slope a = 0.5: each step multiplies the second "
        "moment by 1 + a^2 = 1.25, outside [1/2, 2] by l = 6; run at the largest width with L = 8",
        expected="holds at the largest width for L = 2 (asserted); longer L at the largest width expected "
        "but not asserted (finite-width spread); smaller widths are findings",
        axes=("m", "L", "regime", "a"),
        declared={"c": C_DECLARED},
        delta=0.1,
        precision="float32",
        figures=(ratio_per_layer,),
    )
)
