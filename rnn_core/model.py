"""The paper's ReLU Elman RNN (SPEC section 1): one batch-major pass that every consumer uses.

    h_0 = 0,   g_l = W h_{l-1} + A X_l,   h_l = relu(g_l)   (l = 1..L),   f(x) = B h_L
    delta_L = D_L B^T,   delta_l = D_l W^T delta_{l+1},   D_l = diag(1[g_l > 0])
    grad_W f(x) = sum_{l=2}^{L} delta_l h_{l-1}^T          (the l = 1 term vanishes: h_0 = 0)

Initialization W_ij ~ N(0, 2/m), A_ij ~ N(0, 2/m), B_i ~ N(0, 1); only W is trained.

The pass. :func:`forward` writes h_1..h_L of a batch into an :class:`RNNPass` and :func:`backward`
writes delta_L..delta_2 (delta_1 on request) into the same object. The public forward, the NTK
features (rnn_core.ntk), training (rnn_core.train) and the perturbed networks of rnn_core.perturb all
run these two recursions; rnn_core.reference is the independent oracle they are tested against.

- Batch-major storage: ``h_prev`` (n, L-1, m) holds h_1..h_{L-1} and ``deltas`` (n, L-1, m) holds
  delta_2..delta_L, so flattened they are the (n (L-1), m) row stacks whose Grams give the NTK and
  whose product deltas^T h_prev gives the training gradient, with no copy.
- No pre-activation is stored: g_l is written into h_l's rows and activated in place, and the mask
  D_l is read from the hidden state (1[h_l > 0] = 1[g_l > 0] for relu and for the step).
- The optional perturbation term (:class:`Perturbation`): row k of the batch may run
  W'_k = W + omega_k Delta_k. Forward adds omega_k Delta_k h'_{l-1} to g'_l and backward adds
  omega_k Delta_k^T delta'_{l+1} before the mask, so W is read once per step for every row.
- ``activation="step"`` (h = 1[g > 0]) is the discontinuous activation of the PERT negative control:
  its derivative is 0 almost everywhere, so every delta is 0.

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
    "RNNPass",
    "Perturbation",
    "ACTIVATIONS",
    "init_params",
    "forward",
    "backward",
    "backward_deltas",
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
class Perturbation:
    """The optional term of the pass: row k of the batch runs W'_k = W + omega_k Delta_k.

    Delta_k = R (one (m, m) matrix shared by the dense rows) or u_k v_k^T (a rank-one row); rows in
    neither list run W itself. ``dense`` and ``rank_one`` are row numbers of the batch;
    ``omega_dense`` (r_d, 1) and ``omega_rank_one`` (r_1, 1) their scales; U, V (r_1, m) the rank-one
    factors in the order of ``rank_one``. No m x m matrix is formed per row:
    Delta_k x = u_k (v_k . x) and Delta_k^T x = v_k (u_k . x) for a rank-one row.
    """

    dense: torch.Tensor
    omega_dense: torch.Tensor
    R: torch.Tensor | None
    rank_one: torch.Tensor
    omega_rank_one: torch.Tensor
    U: torch.Tensor | None
    V: torch.Tensor | None

    def add_(self, out: torch.Tensor, x: torch.Tensor, *, transpose: bool) -> None:
        """out[k] += omega_k Delta_k x[k] (Delta_k^T x[k] when ``transpose``) for every perturbed row k.

        Row-vector form: (R x)^T = x^T R^T, so the dense rows add (x @ R^T) (x @ R when transposed).
        """
        if self.dense.numel():
            term = x[self.dense] @ (self.R if transpose else self.R.T)
            out.index_add_(0, self.dense, term.mul_(self.omega_dense))
        if self.rank_one.numel():
            dot, direction = (self.U, self.V) if transpose else (self.V, self.U)
            coef = (x[self.rank_one] * dot).sum(dim=1, keepdim=True).mul_(self.omega_rank_one)
            out.index_add_(0, self.rank_one, direction * coef)


@dataclass
class RNNPass:
    """One pass of the RNN over a batch of n sequences of length L, batch-major (module docstring).

    h_prev (n, L-1, m): h_prev[:, l-2] = h_{l-1} for l = 2..L, the hidden states W multiplies.
    h_last (n, m): h_L. h_prev and h_last share one allocation (h_last right after h_prev), so the
        recurrence writes every h_l in place.
    deltas (n, L-1, m): deltas[:, l-2] = delta_l for l = 2..L, the factors that meet h_prev in
        grad_W f(x) = sum_{l>=2} delta_l h_{l-1}^T (filled by :func:`backward`).
    delta_first (n, m): delta_1 (filled only by ``backward(..., first_delta=True)``; it multiplies
        h_0 = 0 in every gradient).
    out (n,): f(x) = B h_L (set by :func:`forward`).
    activation: the activation of the forward pass, so the backward differentiates the same function.
    perturbation: the perturbation term of the forward pass (None: every row runs W), reused by the
        backward pass.
    """

    h_prev: torch.Tensor
    h_last: torch.Tensor
    deltas: torch.Tensor
    delta_first: torch.Tensor
    activation: str = "relu"
    perturbation: Perturbation | None = None
    out: torch.Tensor | None = None

    @staticmethod
    def allocate(n: int, L: int, m: int, device, dtype, activation: str = "relu",
                 perturbation: Perturbation | None = None) -> "RNNPass":
        """Uninitialized storage for a pass of n sequences of length L at width m (reusable across passes)."""
        hidden = torch.empty(n * L * m, device=device, dtype=dtype)
        delta = torch.empty(n * L * m, device=device, dtype=dtype)
        cut = n * (L - 1) * m
        return RNNPass(h_prev=hidden[:cut].view(n, L - 1, m), h_last=hidden[cut:].view(n, m),
                       deltas=delta[:cut].view(n, L - 1, m), delta_first=delta[cut:].view(n, m),
                       activation=activation, perturbation=perturbation)

    @property
    def length(self) -> int:
        """L, the sequence length."""
        return self.h_prev.shape[1] + 1

    def h(self, l: int) -> torch.Tensor:
        """h_l for l = 1..L as an (n, m) view (rows strided by (L-1) m for l < L)."""
        return self.h_last if l == self.length else self.h_prev[:, l - 1]

    def delta(self, l: int) -> torch.Tensor:
        """delta_l for l = 1..L as an (n, m) view (delta_1 is delta_first, also when L = 1)."""
        return self.delta_first if l == 1 else self.deltas[:, l - 2]

    def hidden_states(self) -> torch.Tensor:
        """(n, L, m) copy with [:, l-1] = h_l, l = 1..L."""
        return torch.cat([self.h_prev, self.h_last[:, None]], dim=1)

    def all_deltas(self) -> torch.Tensor:
        """(n, L, m) copy with [:, l-1] = delta_l, l = 1..L (after ``backward(..., first_delta=True)``)."""
        return torch.cat([self.delta_first[:, None], self.deltas], dim=1)


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
    """out = D_l grad = grad * 1[h_l > 0] in one fused pass (relu's backward; ``out`` may alias ``grad``).

    With h_l = relu(g_l) (or the step), 1[h_l > 0] = 1[g_l > 0] = relu'(g_l) with relu'(0) = 0, so the
    mask is read from the hidden state and the pre-activation need not be stored.
    """
    return torch.ops.aten.threshold_backward.grad_input(grad, h, 0, grad_input=out)


def _add_recurrent_(g: torch.Tensor, W: torch.Tensor, h: torch.Tensor) -> None:
    """g <- g + h W^T in place, for row stacks g, h of shape (n, m): the recurrence's W h_{l-1} term.

    Written as g^T <- g^T + W h^T (addmm_ on the transposed views: no copy, the result lands in g's
    rows), so that BLAS reads W untransposed; same products and sums as g.addmm_(h, W.T)
    (benchmarks/peak.py times it alone as the recurrence-step ceiling).
    """
    g.T.addmm_(W, h.T)


def _back_through_W(delta_next: torch.Tensor, W: torch.Tensor, out: torch.Tensor) -> None:
    """out <- W^T delta_{l+1} for a row stack (n, m): (W^T delta)_j = sum_i W_ij delta_i, i.e. delta @ W."""
    torch.mm(delta_next, W, out=out)


def _activate_(x: torch.Tensor, activation: str) -> torch.Tensor:
    """x <- act(x) in place: relu(x) = max(x, 0), or the step 1[x > 0] (in x's dtype)."""
    return x.relu_() if activation == "relu" else x.gt_(0)


def _project_inputs(p: RNNParams, X: torch.Tensor, h_prev: torch.Tensor, h_last: torch.Tensor) -> None:
    """A X_l for l = 1..L written straight into the rows of h_l (X: validated (n, L, d); buffers as in RNNPass)."""
    n, L, d = X.shape
    w_steps = L - 1  # the steps at which W acts (h_0 = 0: step 1 is A X_1 only)
    # One 2-D matmul per buffer (a batched matmul with K = d is several times slower on the CPU).
    if w_steps > 0:
        torch.mm(X[:, :w_steps].reshape(n * w_steps, d), p.A.T, out=h_prev.view(n * w_steps, -1))
    torch.mm(X[:, w_steps], p.A.T, out=h_last)


def _forward_into(p: RNNParams, X: torch.Tensor, run: RNNPass, index: torch.Tensor | None = None) -> torch.Tensor:
    """The forward recursion: h_1..h_L into ``run``; sets and returns run.out = f(x) = B h_L.

    X: a validated (n, L, d) tensor on p's device and dtype; row k of the batch runs the sequence
    X[index[k]] (default: X[k]). The input projections A X_l of all steps are written into h_l's rows
    first (with ``index``: computed for the n sequences, then gathered, so that a row's projections are
    bit for bit those of its sequence's own pass); step l then adds W h_{l-1} in place (and the
    perturbation term, if any) and activates: g_l becomes h_l in its own storage.
    """
    if index is None:
        _project_inputs(p, X, run.h_prev, run.h_last)
    else:
        n, L, _ = X.shape
        own = torch.empty(n * L * p.m, device=p.device, dtype=p.dtype)  # the n sequences' h_prev, h_last
        own_prev, own_last = own[: n * (L - 1) * p.m].view(n, L - 1, p.m), own[n * (L - 1) * p.m :].view(n, p.m)
        _project_inputs(p, X, own_prev, own_last)
        run.h_prev.copy_(own_prev[index])
        run.h_last.copy_(own_last[index])
    L = run.length
    for l in range(1, L + 1):
        g = run.h(l)  # holds A X_l
        if l > 1:
            _add_recurrent_(g, p.W, run.h(l - 1))  # g_l = A X_l + W h_{l-1}
            if run.perturbation is not None:
                run.perturbation.add_(g, run.h(l - 1), transpose=False)  # + omega_k Delta_k h'_{l-1}
        _activate_(g, run.activation)
    run.out = torch.mv(run.h_last, p.B)
    return run.out


def _backward_into(p: RNNParams, run: RNNPass, *, first_delta: bool = False,
                   residual: torch.Tensor | None = None) -> None:
    """The backward recursion: delta_L..delta_2 (and delta_1 when ``first_delta``) into ``run``.

    delta_L = D_L B^T, delta_l = D_l W^T delta_{l+1} (W'_k^T for perturbed rows). ``residual`` r (n,):
    start from r_i D_L B^T instead; the backward pass is linear in delta_L, so every delta comes out
    as r_i delta_l(x_i) (the training gradient's weighting). The step activation has every delta 0.
    """
    n, m = run.h_last.shape
    L = run.length
    lowest = 1 if first_delta else 2
    if L < lowest:
        return
    if run.activation == "step":
        run.deltas.zero_()
        if first_delta:
            run.delta_first.zero_()
        return
    top = p.B.expand(n, m) if residual is None else torch.outer(residual, p.B)
    _relu_mask(top, run.h_last, run.delta(L))
    for l in range(L - 1, lowest - 1, -1):
        cur, nxt = run.delta(l), run.delta(l + 1)
        _back_through_W(nxt, p.W, cur)
        if run.perturbation is not None:
            run.perturbation.add_(cur, nxt, transpose=True)  # + omega_k Delta_k^T delta'_{l+1}
        _relu_mask(cur, run.h(l), cur)


def _pass(p: RNNParams, X: torch.Tensor, activation: str = "relu", *, backward: bool = False,
          first_delta: bool = False, perturbation: Perturbation | None = None,
          index: torch.Tensor | None = None) -> RNNPass:
    """Forward (and, when ``backward``, backward) over a validated (n, L, d) tensor X, in fresh storage.

    ``index`` (r,): the batch is the r rows X[index] (see :func:`_forward_into`)."""
    n, L, _ = X.shape
    rows = n if index is None else index.numel()
    run = RNNPass.allocate(rows, L, p.m, p.device, p.dtype, activation, perturbation)
    _forward_into(p, X, run, index)
    if backward:
        _backward_into(p, run, first_delta=first_delta)
    return run


def forward(p: RNNParams, X, *, activation: str = "relu") -> RNNPass:
    """Run the RNN on a batch X of shape (n, L, d): h_1..h_L and f(x) (see :class:`RNNPass`).

    ``activation="step"`` (h = 1[g > 0]) is the discontinuous activation of the PERT negative control.
    """
    _check_activation(activation)
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    return _pass(p, X, activation)


def backward(p: RNNParams, run: RNNPass, *, first_delta: bool = False) -> RNNPass:
    """Fill run.deltas (delta_2..delta_L) and, when ``first_delta``, run.delta_first (delta_1); returns ``run``.

    ``run`` comes from :func:`forward` with the same parameters ``p``.
    """
    _backward_into(p, run, first_delta=first_delta)
    return run


def backward_deltas(p: RNNParams, run: RNNPass) -> torch.Tensor:
    """delta_l = df/dg_l for l = 1..L, as an (n, L, m) tensor with [:, l-1] = delta_l (fills ``run`` too).

    delta_L = D_L B^T and delta_l = D_l W^T delta_{l+1}, D_l = diag(relu'(g_l)) with relu'(0) = 0.
    For the step activation the derivative is 0 almost everywhere, so every delta is 0.
    """
    return backward(p, run, first_delta=True).all_deltas()


def output(p: RNNParams, X, *, activation: str = "relu") -> torch.Tensor:
    """f(x) = B h_L for every sequence of X: shape (n,)."""
    return forward(p, X, activation=activation).out


def per_example_grad_W(p: RNNParams, X, *, activation: str = "relu") -> torch.Tensor:
    """grad_W f(x) = sum_{l>=2} delta_l h_{l-1}^T for every sequence: shape (n, m, m).

    Holds n m^2 numbers: meant for small n (perturbation claims, tests), never for kernels.
    """
    run = backward(p, forward(p, X, activation=activation))
    return torch.einsum("nki,nkj->nij", run.deltas, run.h_prev)
