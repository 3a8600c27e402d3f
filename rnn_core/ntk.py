"""The empirical NTK of the RNN with respect to W, normalized by width (SPEC section 1).

    H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F
               = (1/m) sum_{l, l'} <delta_l(x), delta_{l'}(x')> <h_{l-1}(x), h_{l'-1}(x')>

The structured algorithm never forms the n m^2 Jacobian: it builds the Gram matrix of the deltas and
the Gram matrix of the hidden states (both (nL) x (n2 L)), multiplies them elementwise and sums each
L x L block. Cross-time terms l != l' are kept: they do not vanish at finite width. Because h_0 = 0
the l = 1 terms vanish and are skipped, so the effective length is L - 1 (for L = 1 the kernel is 0).

Implementations (cost for n = n2 sequences of length L at width m, flops up to constants):
- STRUCTURED: forward + backward O(n L m^2), Grams O((nL)^2 m), symmetric half when X2 is X; memory
  O(n L m) for the features plus two Gram panels of (c L) x (c' L) entries. The features are the
  pass of rnn_core.model: h_1..h_{L-1} (``h_prev``) and delta_2..delta_L (``deltas``), written
  straight into the batch-major (n, L-1, m) row stacks the Grams read; the Grams are taken one row
  panel at a time against the columns on and above the block diagonal (see :func:`gram_kernel`).
- JACOBIAN_CONTRACTION: torch.func ``vmap(jacrev)``: the n m^2 Jacobian, then one contraction
  (rnn_core.reference, the independent oracle); memory O(n m^2).
- NTK_VECTOR_PRODUCTS: torch.func ``vjp`` / ``jvp`` per column (PyTorch's NTK tutorial, method 2;
  rnn_core.reference); O(n) backward passes, memory O(m^2). For benchmarks.
"""

from __future__ import annotations

import enum

import torch

from rnn_core._checks import as_sequences, check_pair
from rnn_core.model import RNNParams, RNNPass, _check_activation, _pass

__all__ = ["NTKImplementation", "empirical_ntk", "empirical_ntk_reference", "gram_kernel", "ntk_features"]

# Gram step blocking (chosen by measurement on the CPU, see benchmarks.peak): a row panel holds about
# _PANEL_ROWS rows (whole sequences: c = max(1, _PANEL_ROWS // (L-1)) of them) and is multiplied against
# at most _PANEL_COLS rows at a time, so the two (rows x cols) Gram panels stay a few MiB while each
# matmul is large enough for BLAS to run near its peak. On CUDA the cost is launches: much larger panels.
_PANEL_ROWS = 256
_PANEL_COLS = 4096
_CUDA_PANEL_ROWS = 2048
_CUDA_PANEL_COLS = 16384


class NTKImplementation(enum.Enum):
    """How :func:`empirical_ntk` computes H_m; see the module docstring for the cost of each."""

    STRUCTURED = "structured"
    JACOBIAN_CONTRACTION = "jacobian_contraction"
    NTK_VECTOR_PRODUCTS = "ntk_vector_products"


def _features(p: RNNParams, X: torch.Tensor, activation: str) -> RNNPass:
    return _pass(p, X, activation, backward=True)


def ntk_features(p: RNNParams, X, *, activation: str = "relu") -> tuple[torch.Tensor, torch.Tensor]:
    """The per-step factors of grad_W f: (deltas, h_prev), both (n, L-1, m) and contiguous.

    deltas[:, l-2] = delta_l and h_prev[:, l-2] = h_{l-1} for l = 2..L, so
    grad_W f(x_i) = sum_l deltas[i, l-2] h_prev[i, l-2]^T (see :class:`rnn_core.model.RNNPass`).
    """
    _check_activation(activation)
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    run = _features(p, X, activation)
    return run.deltas, run.h_prev


def _panel_sizes(device: torch.device, w_steps: int) -> tuple[int, int]:
    """(sequences per row panel, sequences per column block) for features of w_steps = L-1 steps each."""
    rows, cols = (_CUDA_PANEL_ROWS, _CUDA_PANEL_COLS) if device.type == "cuda" else (_PANEL_ROWS, _PANEL_COLS)
    return max(1, rows // w_steps), max(1, cols // w_steps)


def gram_kernel(
    deltas: torch.Tensor,
    h_prev: torch.Tensor,
    deltas2: torch.Tensor | None,
    h_prev2: torch.Tensor | None,
    m: int,
    *,
    gram_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """H_m(x_i, x'_j) = (1/m) sum_{l, l' >= 2} <delta_l(x_i), delta_l'(x'_j)> <h_{l-1}(x_i), h_{l'-1}(x'_j)>, float64.

    The Gram step of the NTK. deltas, h_prev: (n, L-1, m) contiguous features (as from
    :func:`ntk_features`); deltas2 = h_prev2 = None means the second argument is the first, and then
    only the panels on and above the block diagonal are computed and the result is made exactly
    symmetric by mirroring its upper triangle.

    Flattened to (n (L-1), m) row stacks, the two Grams G_delta = deltas deltas2^T and
    G_h = h_prev h_prev2^T are formed one row panel of c whole sequences at a time (against column
    blocks of whole sequences), multiplied elementwise in float64 and summed over each
    (L-1) x (L-1) block. ``gram_dtype`` is the dtype of the
    Gram matmuls: the features' dtype by default (float32 features give float32 Grams, converted to
    float64 before the product); float64 upcasts float32 features first (more accurate, slower).
    """
    sym = deltas2 is None
    if sym:
        deltas2, h_prev2 = deltas, h_prev
    n, w_steps, _ = deltas.shape
    n2 = deltas2.shape[0]
    H = torch.zeros((n, n2), device=deltas.device, dtype=torch.float64)
    if w_steps == 0:
        return H
    gdt = deltas.dtype if gram_dtype is None else gram_dtype
    if gdt != deltas.dtype:
        deltas, h_prev = deltas.to(gdt), h_prev.to(gdt)
        deltas2, h_prev2 = (deltas, h_prev) if sym else (deltas2.to(gdt), h_prev2.to(gdt))
    deltas_rows, h_prev_rows = deltas.reshape(n * w_steps, m), h_prev.reshape(n * w_steps, m)
    deltas2_rows, h_prev2_rows = deltas2.reshape(n2 * w_steps, m), h_prev2.reshape(n2 * w_steps, m)
    c, cc = _panel_sizes(deltas.device, w_steps)
    gram_deltas_buf = torch.empty(c * w_steps * cc * w_steps, device=deltas.device, dtype=gdt)
    gram_h_buf = torch.empty_like(gram_deltas_buf)
    for a in range(0, n, c):
        a1 = min(n, a + c)
        rows = slice(a * w_steps, a1 * w_steps)
        # X2 = X: the panel's columns start at its own first sequence (upper block triangle).
        for b in range(a if sym else 0, n2, cc):
            b1 = min(n2, b + cc)
            cols = slice(b * w_steps, b1 * w_steps)
            shape = ((a1 - a) * w_steps, (b1 - b) * w_steps)
            gram_deltas = torch.mm(deltas_rows[rows], deltas2_rows[cols].T, out=gram_deltas_buf[: shape[0] * shape[1]].view(shape))
            gram_h = torch.mm(h_prev_rows[rows], h_prev2_rows[cols].T, out=gram_h_buf[: shape[0] * shape[1]].view(shape))
            if gdt != torch.float64:
                gram_deltas, gram_h = gram_deltas.double(), gram_h.double()
            gram_deltas.mul_(gram_h)
            # block sums: over l' (contiguous) first, then over l
            H[a:a1, b:b1] = gram_deltas.view(shape[0], b1 - b, w_steps).sum(dim=2).view(a1 - a, w_steps, b1 - b).sum(dim=1)
    if sym:
        upper = torch.triu(H)
        H = upper.add_(torch.triu(H, diagonal=1).T)
    return H.div_(m)


def _structured(
    p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None, activation: str, gram_dtype: torch.dtype | None
) -> torch.Tensor:
    n, L, _ = X.shape
    n2 = n if X2 is None else X2.shape[0]
    if L < 2:  # h_0 = 0: W never acts on a length-1 sequence.
        return torch.zeros((n, n2), device=p.device, dtype=torch.float64)
    if X2 is None:
        run = _features(p, X, activation)
        return gram_kernel(run.deltas, run.h_prev, None, None, p.m, gram_dtype=gram_dtype)
    # One feature pass over X and X2 together: the recurrence matmuls get n + n2 rows instead of two
    # passes of n and n2 (small row counts run BLAS below its peak); the halves are contiguous slices.
    run = _features(p, torch.cat([X, X2]), activation)
    deltas, h_prev = run.deltas, run.h_prev
    return gram_kernel(deltas[:n], h_prev[:n], deltas[n:], h_prev[n:], p.m, gram_dtype=gram_dtype)


def empirical_ntk(
    p: RNNParams,
    X,
    X2=None,
    *,
    implementation: NTKImplementation | str = NTKImplementation.STRUCTURED,
    activation: str = "relu",
    gram_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """H_m(X, X2): the (n, n2) empirical NTK of the W-trained RNN, normalized by 1/m, in float64.

    ``X`` and ``X2`` are (n, L, d) tensors or arrays with the same (L, d); ``X2=None`` means X2 = X
    (and the symmetric half is computed once). ``implementation`` picks the algorithm
    (:class:`NTKImplementation`); all give the same kernel up to rounding. ``gram_dtype``
    (structured only): the dtype of the Gram matmuls, by default the network's; torch.float64 with a
    float32 network runs the network in float32 and forms the Grams in float64 (see :func:`gram_kernel`).
    """
    try:
        impl = NTKImplementation(implementation) if isinstance(implementation, str) else implementation
    except ValueError:
        allowed = [i.value for i in NTKImplementation]
        raise ValueError(f"implementation must be one of {allowed}, got {implementation!r}") from None
    if not isinstance(impl, NTKImplementation):
        raise ValueError(f"implementation must be an NTKImplementation, got {implementation!r}")
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    if X2 is not None:
        X2 = as_sequences(X2, "X2", d=p.d, device=p.device, dtype=p.dtype)
        check_pair(X, X2)
    _check_activation(activation)
    if gram_dtype not in (None, torch.float32, torch.float64):
        raise ValueError(f"gram_dtype must be None, torch.float32 or torch.float64, got {gram_dtype!r}")
    if impl is NTKImplementation.STRUCTURED:
        return _structured(p, X, X2, activation, gram_dtype)
    if gram_dtype is not None:
        raise ValueError(f"gram_dtype applies to the structured implementation only, not {impl.value!r}")
    if activation != "relu":
        raise ValueError(f"implementation {impl.value!r} supports activation='relu' only, got {activation!r}")
    from rnn_core import reference

    if impl is NTKImplementation.JACOBIAN_CONTRACTION:
        return reference.ntk_jacobian_contraction(p, X, X2)
    return reference.ntk_vector_products(p, X, X2)


def empirical_ntk_reference(p: RNNParams, X, X2=None) -> torch.Tensor:
    """The torch.func ``vmap(jacrev)`` kernel: the slow reference the structured path is tested against."""
    return empirical_ntk(p, X, X2, implementation=NTKImplementation.JACOBIAN_CONTRACTION)
