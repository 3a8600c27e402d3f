"""The paper's ReLU Elman RNN (SPEC section 1): forward pass, backward deltas, per-example gradients.

    h_0 = 0,   g_l = W h_{l-1} + A X_l,   h_l = relu(g_l)   (l = 1..L),   f(x) = B h_L

Initialization W_ij ~ N(0, 2/m), A_ij ~ N(0, 2/m), B_i ~ N(0, 1); only W is trained.

Backward (exact): delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1}, D_l = diag(1[g_l > 0]), and
grad_W f(x) = sum_l delta_l h_{l-1}^T. Since h_0 = 0 the l = 1 term vanishes.

Dtype policy: the network runs in the dtype of its parameters (float64 by default; float32 on
request for very wide networks); every kernel built from it is returned in float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

from rnn_core._checks import as_sequences, check_positive_int
from rnn_core._device import resolve_device

__all__ = [
    "RNNParams",
    "Forward",
    "ACTIVATIONS",
    "init_params",
    "forward",
    "backward_deltas",
    "backward_deltas_tm",
    "output",
    "per_example_grad_W",
]

ACTIVATIONS = ("relu", "step")

# Rows of W drawn per call: fixed so that the random stream (and hence the network) depends on the
# seed and m only, not on memory-driven chunking, and so that a 32768-wide W is never held twice.
_INIT_ROWS_PER_DRAW = 1024


@dataclass(frozen=True)
class RNNParams:
    """Weights of the RNN: W (m, m) recurrent, A (m, d) input, B (m,) output."""

    W: torch.Tensor
    A: torch.Tensor
    B: torch.Tensor

    @property
    def m(self) -> int:
        return self.W.shape[0]

    @property
    def d(self) -> int:
        return self.A.shape[1]

    @property
    def device(self) -> torch.device:
        return self.W.device

    @property
    def dtype(self) -> torch.dtype:
        return self.W.dtype

    def with_W(self, W: torch.Tensor) -> "RNNParams":
        """The same network with the recurrent matrix replaced (A and B are never trained)."""
        if W.shape != self.W.shape:
            raise ValueError(f"W must have shape {tuple(self.W.shape)}, got {tuple(W.shape)}")
        return replace(self, W=W.to(device=self.device, dtype=self.dtype))


@dataclass(frozen=True)
class Forward:
    """Everything a forward pass produces, stored time-major so each step is one contiguous block.

    h_tm: (L+1, n, m), h_tm[0] = h_0 = 0 and h_tm[l] = h_l.
    g_tm: (L, n, m), g_tm[l-1] = g_l (pre-activations).
    out: (n,), f(x) = B h_L.
    activation: the activation used, so the backward pass differentiates the same function.
    The properties ``h`` (n, L+1, m) and ``g`` (n, L, m) are batch-major views of the same storage.
    """

    h_tm: torch.Tensor
    g_tm: torch.Tensor
    out: torch.Tensor
    activation: str = "relu"

    @property
    def h(self) -> torch.Tensor:
        return self.h_tm.permute(1, 0, 2)

    @property
    def g(self) -> torch.Tensor:
        return self.g_tm.permute(1, 0, 2)


def _gaussian(shape, std: float, gen: torch.Generator, device, dtype) -> torch.Tensor:
    """N(0, std^2) entries drawn on the CPU in float64 (same numbers on every device), row block by row block."""
    rows = shape[0]
    out = torch.empty(shape, device=device, dtype=dtype)
    for start in range(0, rows, _INIT_ROWS_PER_DRAW):
        stop = min(rows, start + _INIT_ROWS_PER_DRAW)
        block = torch.randn((stop - start,) + tuple(shape[1:]), generator=gen, dtype=torch.float64)
        out[start:stop] = (block * std).to(device=device, dtype=dtype)
    return out


def init_params(
    m: int,
    d: int,
    *,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float64,
    w_std_scale: float = 1.0,
) -> RNNParams:
    """Draw W ~ N(0, 2 s^2/m), A ~ N(0, 2/m), B ~ N(0, 1) with s = ``w_std_scale``.

    ``w_std_scale`` is 1 for the paper's initialization; negative controls use sqrt(2) (W ~ N(0, 4/m),
    exploding) or sqrt(1/2) (W ~ N(0, 1/m), vanishing). The numbers are drawn on the CPU from
    ``seed`` and moved to ``device``, so CPU and CUDA runs of a recipe use identical weights.
    """
    m = check_positive_int(m, "m")
    d = check_positive_int(d, "d")
    if dtype not in (torch.float64, torch.float32):
        raise ValueError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    if not (isinstance(w_std_scale, (int, float)) and math.isfinite(w_std_scale) and w_std_scale > 0):
        raise ValueError(f"w_std_scale must be a finite number > 0, got {w_std_scale!r}")
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(int(seed))
    W = _gaussian((m, m), w_std_scale * math.sqrt(2.0 / m), gen, dev, dtype)
    A = _gaussian((m, d), math.sqrt(2.0 / m), gen, dev, dtype)
    B = _gaussian((m,), 1.0, gen, dev, dtype)
    return RNNParams(W=W, A=A, B=B)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return activation


def _relu_mask(grad: torch.Tensor, h: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """out = grad * 1[h > 0] in one fused pass (relu's backward; ``out`` may alias ``grad``).

    With h = relu(g) (or h = g), 1[h > 0] = 1[g > 0] = relu'(g) with relu'(0) = 0, so the mask can be
    read from the hidden state and the pre-activation need not be stored.
    """
    return torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=out)


def _add_recurrent_(g: torch.Tensor, W: torch.Tensor, h: torch.Tensor) -> None:
    """g <- g + h W^T in place, for row stacks g, h of shape (n, m): the recurrence's W h_{l-1} term.

    Written as g^T <- g^T + W h^T (addmm_ on the transposed views: no copy, the result lands in g's
    rows), so that BLAS reads W untransposed; same products and sums as g.addmm_(h, W.T)
    (benchmarks/peak.py times it alone as the recurrence-step ceiling).
    """
    g.T.addmm_(W, h.T)


def _activate_(x: torch.Tensor, activation: str) -> torch.Tensor:
    """x <- act(x) in place: relu(x) = max(x, 0), or the step 1[x > 0] (in x's dtype)."""
    return x.relu_() if activation == "relu" else x.gt_(0)


def forward(p: RNNParams, X, *, activation: str = "relu") -> Forward:
    """Run the RNN on a batch X of shape (n, L, d); see :class:`Forward` for what is returned.

    ``activation="step"`` (h = 1[g > 0]) is the discontinuous activation of the PERT negative control.
    The input projections A X_l for all l are one matmul written straight into g; step l adds
    W h_{l-1} in place (step 1 has h_0 = 0 and needs no matmul).
    """
    _check_activation(activation)
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    n, L, _ = X.shape
    m = p.m
    g = torch.matmul(X.transpose(0, 1), p.A.T).contiguous()  # (L, n, m): A X_l, time-major
    h = torch.empty((L + 1, n, m), device=p.device, dtype=p.dtype)
    h[0].zero_()
    for l in range(L):
        if l > 0:
            _add_recurrent_(g[l], p.W, h[l])  # g_l = A X_l + W h_{l-1}
        if activation == "relu":
            torch.clamp_min(g[l], 0.0, out=h[l + 1])
        else:
            torch.gt(g[l], 0, out=h[l + 1])
    out = h[L] @ p.B
    return Forward(h_tm=h, g_tm=g, out=out, activation=activation)


def backward_deltas(p: RNNParams, fw: Forward) -> torch.Tensor:
    """delta_l = df/dg_l for l = 1..L, as an (n, L, m) view with deltas[:, l-1] = delta_l.

    delta_L = D_L B^T and delta_l = D_l W^T delta_{l+1}, D_l = diag(relu'(g_l)) with relu'(0) = 0.
    For the step activation the derivative is 0 almost everywhere, so every delta is 0.
    """
    return backward_deltas_tm(p, fw).permute(1, 0, 2)


def backward_deltas_tm(p: RNNParams, fw: Forward) -> torch.Tensor:
    """The deltas of :func:`backward_deltas`, time-major: (L, n, m) with out[l-1] = delta_l."""
    g = fw.g_tm
    L = g.shape[0]
    deltas = torch.empty_like(g)
    if fw.activation == "step":
        deltas.zero_()
        return deltas
    _relu_mask(p.B.expand_as(g[L - 1]), g[L - 1], deltas[L - 1])
    for l in range(L - 2, -1, -1):
        # (W^T delta)_j = sum_i W_ij delta_i, i.e. delta @ W in row-vector form; then the mask, in place.
        torch.mm(deltas[l + 1], p.W, out=deltas[l])
        _relu_mask(deltas[l], g[l], deltas[l])
    return deltas


@dataclass
class _FeatureBuffers:
    """Storage of the fast feature pass, batch-major so that each sequence's steps are adjacent rows.

    Hp (n, L-1, m): Hp[:, k] = h_{k+1} (k = 0..L-2); hL (n, m) = h_L; D (n, L-1, m): D[:, k] = delta_{k+2}.
    Hp and hL share one allocation (hL right after Hp), so the recurrence writes every h_l in place.
    Flattened, Hp and D are the (n (L-1), m) row stacks whose Grams give the NTK and whose product
    D^T Hp gives the training gradient. Reused across the steps of a training run.
    """

    Hp: torch.Tensor
    hL: torch.Tensor
    D: torch.Tensor

    @staticmethod
    def allocate(n: int, L: int, m: int, device, dtype) -> "_FeatureBuffers":
        store = torch.empty(n * L * m, device=device, dtype=dtype)
        Hp = store[: n * (L - 1) * m].view(n, L - 1, m)
        hL = store[n * (L - 1) * m :].view(n, m)
        D = torch.empty((n, L - 1, m), device=device, dtype=dtype)
        return _FeatureBuffers(Hp=Hp, hL=hL, D=D)

    def h(self, l: int) -> torch.Tensor:
        """h_l for l = 1..L as an (n, m) view (rows strided by (L-1) m for l < L)."""
        return self.hL if l == self.Hp.shape[1] + 1 else self.Hp[:, l - 1]


def _forward_into(p: RNNParams, X: torch.Tensor, buf: _FeatureBuffers, activation: str = "relu") -> torch.Tensor:
    """Hidden states h_1..h_L into ``buf`` (pre-activations are overwritten in place); returns f(x) = B h_L.

    X: a validated (n, L, d) tensor on p's device and dtype. Step l: h_l <- act(A X_l + W h_{l-1}) with
    A X_l written first (one matmul for all steps) and W h_{l-1} added in place by addmm_.
    """
    n, L, d = X.shape
    Lp = L - 1
    # One 2-D matmul per buffer (a batched matmul with K = d is several times slower on the CPU).
    if Lp > 0:
        torch.mm(X[:, :Lp].reshape(n * Lp, d), p.A.T, out=buf.Hp.view(n * Lp, -1))
    torch.mm(X[:, Lp], p.A.T, out=buf.hL)
    prev = None
    for l in range(1, L + 1):
        cur = buf.h(l)
        if prev is not None:
            _add_recurrent_(cur, p.W, prev)
        _activate_(cur, activation)
        prev = cur
    return torch.mv(buf.hL, p.B)


def _backward_into(p: RNNParams, buf: _FeatureBuffers, activation: str = "relu", scale: torch.Tensor | None = None) -> None:
    """delta_L..delta_2 into buf.D from the hidden states in ``buf`` (masks 1[h_l > 0]).

    delta_L = D_L B^T (times scale_i for sequence i when ``scale`` is given: the backward pass is
    linear, so this yields r_i delta_l(x_i) at every l), delta_l = D_l W^T delta_{l+1}. delta_1 is
    never formed: it multiplies h_0 = 0 in every use. The step activation has every delta 0.
    """
    n, Lp, m = buf.D.shape
    if Lp == 0:
        return
    if activation == "step":
        buf.D.zero_()
        return
    last = buf.D[:, Lp - 1]
    top = p.B.expand(n, m) if scale is None else torch.outer(scale, p.B)
    _relu_mask(top, buf.hL, last)
    for k in range(Lp - 2, -1, -1):  # D[:, k] = delta_{k+2} = D_{k+2} W^T delta_{k+3}
        cur = buf.D[:, k]
        torch.mm(buf.D[:, k + 1], p.W, out=cur)
        _relu_mask(cur, buf.Hp[:, k + 1], cur)


def output(p: RNNParams, X, *, activation: str = "relu") -> torch.Tensor:
    """f(x) = B h_L for every sequence of X: shape (n,)."""
    return forward(p, X, activation=activation).out


def per_example_grad_W(p: RNNParams, X, *, activation: str = "relu") -> torch.Tensor:
    """grad_W f(x) = sum_l delta_l h_{l-1}^T for every sequence: shape (n, m, m).

    Holds n m^2 numbers: meant for small n (perturbation claims, tests), never for kernels.
    """
    fw = forward(p, X, activation=activation)
    deltas = backward_deltas_tm(p, fw)
    return torch.einsum("lni,lnj->nij", deltas, fw.h_tm[:-1])
