"""The empirical NTK of the RNN with respect to W, normalized by width (SPEC section 1).

    H_m(x, x') = (1/m) <grad_W f(x), grad_W f(x')>_F
               = (1/m) sum_{l, l'} <delta_l(x), delta_{l'}(x')> <h_{l-1}(x), h_{l'-1}(x')>

The structured algorithm never forms the n m^2 Jacobian: it builds the Gram matrix of the deltas and
the Gram matrix of the hidden states (both (nL) x (n2 L)), multiplies them elementwise and sums each
L x L block. Cross-time terms l != l' are kept: they do not vanish at finite width. Because h_0 = 0
the l = 1 terms vanish and are skipped, so the effective length is L - 1 (for L = 1 the kernel is 0).

Implementations (cost for n = n2 sequences of length L at width m, flops up to constants):
- STRUCTURED: forward + backward O(n L m^2), Grams O((nL)^2 m), symmetric half when X2 is X; memory
  O(n L m + (c L)^2) for a chunk of c sequences.
- JACOBIAN_CONTRACTION: torch.func ``vmap(jacrev)``: the n m^2 Jacobian, then one contraction. The
  reference for tests; memory O(n m^2).
- NTK_VECTOR_PRODUCTS: torch.func ``vjp`` / ``jvp`` per column (PyTorch's NTK tutorial, method 2);
  O(n) backward passes, memory O(m^2). For benchmarks.
"""

from __future__ import annotations

import enum

import torch

from rnn_core._checks import as_sequences, check_pair
from rnn_core.model import RNNParams, backward_deltas_tm, forward

__all__ = ["NTKImplementation", "empirical_ntk", "empirical_ntk_reference", "ntk_features"]

# Target rows (c * (L-1)) of one Gram block: large enough for BLAS efficiency, small enough that the
# (rows x rows) products of a block stay a few MiB.
_BLOCK_ROWS = 512


class NTKImplementation(enum.Enum):
    """How :func:`empirical_ntk` computes H_m; see the module docstring for the cost of each."""

    STRUCTURED = "structured"
    JACOBIAN_CONTRACTION = "jacobian_contraction"
    NTK_VECTOR_PRODUCTS = "ntk_vector_products"


def ntk_features(p: RNNParams, X, *, activation: str = "relu") -> tuple[torch.Tensor, torch.Tensor]:
    """The per-step factors of grad_W f: deltas and previous hidden states for l = 2..L.

    Returns (D, Hp), both (n, L-1, m) and contiguous, with D[:, k] = delta_{k+2} and Hp[:, k] = h_{k+1},
    so grad_W f(x_i) = sum_k D[i, k] Hp[i, k]^T.
    """
    fw = forward(p, X, activation=activation)
    deltas = backward_deltas_tm(p, fw)
    D = deltas[1:].transpose(0, 1).contiguous()
    Hp = fw.h_tm[1:-1].transpose(0, 1).contiguous()
    return D, Hp


def _block_kernel(Da, Ha, Db, Hb, m: int) -> torch.Tensor:
    """sum over the L x L blocks of (Da Db^T) * (Ha Hb^T), divided by m, in float64."""
    ca, Lp, _ = Da.shape
    cb = Db.shape[0]
    Gd = Da.reshape(ca * Lp, m) @ Db.reshape(cb * Lp, m).T
    Gh = Ha.reshape(ca * Lp, m) @ Hb.reshape(cb * Lp, m).T
    if Gd.dtype != torch.float64:
        Gd, Gh = Gd.double(), Gh.double()
    Gd.mul_(Gh)
    return Gd.view(ca, Lp, cb, Lp).sum(dim=(1, 3)).div_(m)


def _structured(p: RNNParams, X: torch.Tensor, X2: torch.Tensor | None, activation: str) -> torch.Tensor:
    n, L, _ = X.shape
    n2 = n if X2 is None else X2.shape[0]
    H = torch.zeros((n, n2), device=p.device, dtype=torch.float64)
    if L < 2:  # h_0 = 0: W never acts on a length-1 sequence.
        return H
    m = p.m
    D, Hp = ntk_features(p, X, activation=activation)
    if X2 is None:
        D2, Hp2 = D, Hp
    else:
        D2, Hp2 = ntk_features(p, X2, activation=activation)
    c = max(1, _BLOCK_ROWS // (L - 1))
    for a in range(0, n, c):
        a1 = min(n, a + c)
        # When X2 is X the kernel is symmetric: compute the upper block triangle and mirror it.
        start = a if X2 is None else 0
        for b in range(start, n2, c):
            b1 = min(n2, b + c)
            blk = _block_kernel(D[a:a1], Hp[a:a1], D2[b:b1], Hp2[b:b1], m)
            H[a:a1, b:b1] = blk
            if X2 is None and b != a:
                H[b:b1, a:a1] = blk.T
    return H


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
) -> torch.Tensor:
    """H_m(X, X2): the (n, n2) empirical NTK of the W-trained RNN, normalized by 1/m, in float64.

    ``X`` and ``X2`` are (n, L, d) tensors or arrays with the same (L, d); ``X2=None`` means X2 = X
    (and the symmetric half is computed once). ``implementation`` picks the algorithm
    (:class:`NTKImplementation`); all give the same kernel up to rounding.
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
    if impl is NTKImplementation.STRUCTURED:
        return _structured(p, X, X2, activation)
    if activation != "relu":
        raise ValueError(f"implementation {impl.value!r} supports activation='relu' only, got {activation!r}")
    if impl is NTKImplementation.JACOBIAN_CONTRACTION:
        return _jacobian_contraction(p, X, X2)
    return _ntk_vector_products(p, X, X2)


def empirical_ntk_reference(p: RNNParams, X, X2=None) -> torch.Tensor:
    """The torch.func ``vmap(jacrev)`` kernel: the slow reference the structured path is tested against."""
    return empirical_ntk(p, X, X2, implementation=NTKImplementation.JACOBIAN_CONTRACTION)
