"""The empirical NTK of the RNN with respect to W, normalized by width (SPEC section 1).

    H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F
               = (1/m) sum_{l, l'} <delta_l(x), delta_{l'}(x')> <h_{l-1}(x), h_{l'-1}(x')>

The structured algorithm never forms the n m^2 Jacobian: it builds the Gram matrix of the deltas and
the Gram matrix of the hidden states (both (nL) x (n2 L)), multiplies them elementwise and sums each
L x L block. Cross-time terms l != l' are kept: they do not vanish at finite width. Because h_0 = 0
the l = 1 terms vanish and are skipped, so the effective length is L - 1 (for L = 1 the kernel is 0).

Implementations (cost for n = n2 sequences of length L at width m, flops up to constants):
- STRUCTURED: forward + backward O(n L m^2), Grams O((nL)^2 m), symmetric half when X2 is X; memory
  O(n L m) for the features plus two Gram panels of (c L) x (c' L) entries. The feature pass
  (rnn_core.model._forward_into / _backward_into) writes h_1..h_L and delta_2..delta_L straight into
  the batch-major (n, L-1, m) row stacks the Grams read: no pre-activations, no copies, the relu'
  masks read from the hidden states; the Grams are taken one row panel at a time against the
  columns on and above the block diagonal (see :func:`gram_kernel`).
- JACOBIAN_CONTRACTION: torch.func ``vmap(jacrev)``: the n m^2 Jacobian, then one contraction. The
  reference for tests; memory O(n m^2).
- NTK_VECTOR_PRODUCTS: torch.func ``vjp`` / ``jvp`` per column (PyTorch's NTK tutorial, method 2);
  O(n) backward passes, memory O(m^2). For benchmarks.
"""

from __future__ import annotations

import enum

import torch

from rnn_core._checks import as_sequences, check_pair
from rnn_core.model import RNNParams, _backward_into, _check_activation, _FeatureBuffers, _forward_into

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


def _features(p: RNNParams, X: torch.Tensor, activation: str) -> _FeatureBuffers:
    n, L, _ = X.shape
    buf = _FeatureBuffers.allocate(n, L, p.m, p.device, p.dtype)
    _forward_into(p, X, buf, activation)
    _backward_into(p, buf, activation)
    return buf


def ntk_features(p: RNNParams, X, *, activation: str = "relu") -> tuple[torch.Tensor, torch.Tensor]:
    """The per-step factors of grad_W f: deltas and previous hidden states for l = 2..L.

    Returns (D, Hp), both (n, L-1, m) and contiguous, with D[:, k] = delta_{k+2} and Hp[:, k] = h_{k+1},
    so grad_W f(x_i) = sum_k D[i, k] Hp[i, k]^T.
    """
    _check_activation(activation)
    X = as_sequences(X, "X", d=p.d, device=p.device, dtype=p.dtype)
    buf = _features(p, X, activation)
    return buf.D, buf.Hp


def _panel_sizes(device: torch.device, Lp: int) -> tuple[int, int]:
    """(sequences per row panel, sequences per column block) for features with Lp = L-1 steps."""
    rows, cols = (_CUDA_PANEL_ROWS, _CUDA_PANEL_COLS) if device.type == "cuda" else (_PANEL_ROWS, _PANEL_COLS)
    return max(1, rows // Lp), max(1, cols // Lp)


def gram_kernel(
    D: torch.Tensor,
    Hp: torch.Tensor,
    D2: torch.Tensor | None,
    Hp2: torch.Tensor | None,
    m: int,
    *,
    gram_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """(1/m) sum_{k, k'} <D[i, k], D2[j, k']> <Hp[i, k], Hp2[j, k']>: the Gram step of the NTK, float64.

    D, Hp: (n, L', m) contiguous features (as from :func:`ntk_features`); D2 = Hp2 = None means the
    second argument is the first, and then only the panels on and above the block diagonal are
    computed and the result is made exactly symmetric by mirroring its upper triangle.

    Flattened to (n L', m) row stacks, the two Grams G_D = D D2^T and G_H = Hp Hp2^T are formed one
    row panel of c whole sequences at a time (against column blocks of whole sequences), multiplied
    elementwise in float64 and summed over each L' x L' block. ``gram_dtype`` is the dtype of the
    Gram matmuls: the features' dtype by default (float32 features give float32 Grams, converted to
    float64 before the product); float64 upcasts float32 features first (more accurate, slower).
    """
    sym = D2 is None
    if sym:
        D2, Hp2 = D, Hp
    n, Lp, _ = D.shape
    n2 = D2.shape[0]
    H = torch.zeros((n, n2), device=D.device, dtype=torch.float64)
    if Lp == 0:
        return H
    gdt = D.dtype if gram_dtype is None else gram_dtype
    if gdt != D.dtype:
        D, Hp = D.to(gdt), Hp.to(gdt)
        D2, Hp2 = (D, Hp) if sym else (D2.to(gdt), Hp2.to(gdt))
    Df, Hf = D.reshape(n * Lp, m), Hp.reshape(n * Lp, m)
    D2f, H2f = D2.reshape(n2 * Lp, m), Hp2.reshape(n2 * Lp, m)
    c, cc = _panel_sizes(D.device, Lp)
    gd_buf = torch.empty(c * Lp * cc * Lp, device=D.device, dtype=gdt)
    gh_buf = torch.empty_like(gd_buf)
    for a in range(0, n, c):
        a1 = min(n, a + c)
        rows = slice(a * Lp, a1 * Lp)
        # X2 = X: the panel's columns start at its own first sequence (upper block triangle).
        for b in range(a if sym else 0, n2, cc):
            b1 = min(n2, b + cc)
            cols = slice(b * Lp, b1 * Lp)
            shape = ((a1 - a) * Lp, (b1 - b) * Lp)
            Gd = torch.mm(Df[rows], D2f[cols].T, out=gd_buf[: shape[0] * shape[1]].view(shape))
            Gh = torch.mm(Hf[rows], H2f[cols].T, out=gh_buf[: shape[0] * shape[1]].view(shape))
            if gdt != torch.float64:
                Gd, Gh = Gd.double(), Gh.double()
            Gd.mul_(Gh)
            # block sums: over k' (contiguous) first, then over k
            H[a:a1, b:b1] = Gd.view(shape[0], b1 - b, Lp).sum(dim=2).view(a1 - a, Lp, b1 - b).sum(dim=1)
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
        buf = _features(p, X, activation)
        return gram_kernel(buf.D, buf.Hp, None, None, p.m, gram_dtype=gram_dtype)
    # One feature pass over X and X2 together: the recurrence matmuls get n + n2 rows instead of two
    # passes of n and n2 (small row counts run BLAS below its peak); the halves are contiguous slices.
    buf = _features(p, torch.cat([X, X2]), activation)
    D, Hp = buf.D, buf.Hp
    return gram_kernel(D[:n], Hp[:n], D[n:], Hp[n:], p.m, gram_dtype=gram_dtype)


def _functional_output(W: torch.Tensor, A: torch.Tensor, B: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """f(W, x) for one sequence x of shape (L, d), written with plain ops for torch.func."""
    h = torch.zeros(W.shape[0], dtype=W.dtype, device=W.device)
    for l in range(x.shape[0]):
        h = torch.relu(W @ h + A @ x[l])
    return B @ h


def _jacobian_contraction(p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None) -> torch.Tensor:
    from torch.func import jacrev, vmap

    jac = vmap(jacrev(_functional_output), in_dims=(None, None, None, 0))
    J = jac(p.W, p.A, p.B, X).reshape(X.shape[0], -1)
    J2 = J if X2 is None else jac(p.W, p.A, p.B, X2).reshape(X2.shape[0], -1)
    return (J.double() @ J2.double().T) / p.m


def _ntk_vector_products(p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None) -> torch.Tensor:
    from torch.func import jvp, vjp, vmap

    X2 = X if X2 is None else X2

    def f_batch(W, Xb):
        return vmap(_functional_output, in_dims=(None, None, None, 0))(W, p.A, p.B, Xb)

    _, vjp_fn = vjp(lambda W: f_batch(W, X2), p.W)
    cols = []
    for j in range(X2.shape[0]):
        e = torch.zeros(X2.shape[0], dtype=p.dtype, device=p.device)
        e[j] = 1.0
        (v,) = vjp_fn(e)
        _, col = jvp(lambda W: f_batch(W, X), (p.W,), (v,))
        cols.append(col)
    return torch.stack(cols, dim=1).double() / p.m


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
    if impl is NTKImplementation.JACOBIAN_CONTRACTION:
        return _jacobian_contraction(p, X, X2)
    return _ntk_vector_products(p, X, X2)


def empirical_ntk_reference(p: RNNParams, X, X2=None) -> torch.Tensor:
    """The torch.func ``vmap(jacrev)`` kernel: the slow reference the structured path is tested against."""
    return empirical_ntk(p, X, X2, implementation=NTKImplementation.JACOBIAN_CONTRACTION)
