"""Infinite-width kernels of the W-trained RNN (SPEC section 2), in float64.

For sequences x, x' of the same length L:

    K_0 = 0,   S_l = K_{l-1} + <X_l, X'_l>,   c_l = S_l / sqrt(S_l(x,x) S_l(x',x')),  theta_l = arccos c_l
    K_l    = sqrt(S_l(x,x) S_l(x',x')) / pi * (sin theta_l + (pi - theta_l) c_l)        (NNGP)
    Kdot_l = (pi - theta_l) / pi
    H_inf  = sum_{l=1}^{L} P_l K_{l-1},   P_l = (1/2) prod_{k=l}^{L} Kdot_k

The diagonal is exact: S_l(x, x) = K_l(x, x) = q_l := sum_{k<=l} ||X_k||^2, so only the off-diagonal
needs the arc-cosine recursion. The backward product P_l is folded into a forward accumulation,

    A_0 = 0,   A_l = Kdot_l * (A_{l-1} + K_{l-1} / 2),   H_inf = A_L,

so one pass over l with O(n n2) working memory suffices (not O(L n n2)); rows are processed in blocks
so that n = 16384 fits in a 24 GiB machine.

Degenerate cases: where S_l(x, x) = 0 (every step of x up to l is zero) the network has g_l = 0,
h_l = 0 and relu'(g_l) = 0, so K_l = 0 and Kdot_l = 0 for every pair involving x. The cosine is
clamped to [-1, 1] before arccos. Near c = 1 arccos loses half the digits of float64, so a truly
singular H_inf shows lambda_min / lambda_max of about 1e-9 L, not 0.
"""

from __future__ import annotations

import math

import torch

from rnn_core._checks import as_sequences, check_pair
from rnn_core._device import resolve_device

__all__ = ["infinite_ntk", "infinite_ntk_diag", "infinite_ntk_prefixes", "nngp_kernel", "step_norms"]

# Entries of one row block's (rows x n2) temporaries. The recursion makes ~15 elementwise passes per
# step over each temporary; blocks this small stay in cache across the L steps, which is what makes the
# pass memory-bandwidth-cheap (a 4096 x 4096 block at once was ~10x slower on 2 cores).
_BLOCK_ENTRIES = 1 << 16
# On CUDA the cost is kernel launches, not cache: one block of up to 64M entries (512 MiB) per temporary.
_CUDA_BLOCK_ENTRIES = 1 << 26


def step_norms(X: torch.Tensor) -> torch.Tensor:
    """q_l = sum_{k<=l} ||X_k||^2 for l = 1..L: shape (n, L), float64."""
    return torch.cumsum((X * X).sum(dim=2), dim=1)


def infinite_ntk_diag(X) -> torch.Tensor:
    """H_inf(x, x) = (1/2) sum_{l=0}^{L-1} q_l for every sequence (q_0 = 0): shape (n,), float64."""
    X = as_sequences(X, "X")
    q = step_norms(X)
    return 0.5 * q[:, :-1].sum(dim=1)


def _recursion(
    X: torch.Tensor,
    X2: torch.Tensor,
    q: torch.Tensor,
    q2: torch.Tensor,
    want_ntk: bool,
    self_pairs: bool = False,
    snapshots: tuple[int, ...] = (),
) -> torch.Tensor | list[torch.Tensor]:
    """Run the S/K/Kdot recursion for one row block; return H_inf (want_ntk) or the NNGP K_L.

    ``snapshots``: prefix lengths l at which to keep a copy of the kernel; then the list of those copies
    is returned instead (the accumulator after step l is exactly the kernel of the length-l prefixes).

    ``self_pairs``: X2 starts with the rows of X, so entry (i, i) pairs a sequence with itself. Its
    cosine is exactly 1; rounding would put it at 1 - O(eps), which arccos turns into an O(sqrt(eps))
    error, so it is set to 1 exactly and the diagonal equals (1/2) sum_{l<L} q_l to rounding.
    """
    n, L, _ = X.shape
    n2 = X2.shape[0]
    K = torch.zeros((n, n2), dtype=torch.float64, device=X.device)
    A = torch.zeros_like(K) if want_ntk else None
    c, theta, sin, norm = (torch.empty_like(K) for _ in range(4))
    sq, sq2 = q.sqrt(), q2.sqrt()
    # A zero prefix (S_l(x,x) = 0) needs masking; usually there is none and the masks are skipped.
    has_dead = bool((q[:, 0] == 0).any()) or bool((q2[:, 0] == 0).any())
    kept: list[torch.Tensor] = []
    for l in range(L):
        torch.outer(sq[:, l], sq2[:, l], out=norm)  # sqrt(S_l(x,x) S_l(x',x'))
        torch.addmm(K, X[:, l], X2[:, l].T, out=c)  # S_l = K_{l-1} + <X_l, X'_l>
        if has_dead:
            alive = norm > 0
            c.div_(norm.masked_fill(~alive, 1.0)).masked_fill_(~alive, 0.0)
        else:
            c.div_(norm)
        c.clamp_(-1.0, 1.0)
        if self_pairs:
            c[:, : c.shape[0]].diagonal().fill_(1.0)
            if has_dead:
                c.masked_fill_(~alive, 0.0)
        torch.arccos(c, out=theta)
        torch.sin(theta, out=sin)
        # theta <- Kdot_l = (pi - theta)/pi, in place
        theta.sub_(math.pi).div_(-math.pi)
        if has_dead:
            theta.masked_fill_(~alive, 0.0)
        if want_ntk:
            A.add_(K, alpha=0.5).mul_(theta)  # A_l = Kdot_l (A_{l-1} + K_{l-1}/2)
        # K_l = norm/pi (sin theta + (pi - theta) c) = norm (sin theta / pi + Kdot c)
        torch.addcmul(sin.div_(math.pi), theta, c, out=K)
        K.mul_(norm)
        if (l + 1) in snapshots:
            kept.append((A if want_ntk else K).clone())
    if snapshots:
        return kept
    return A if want_ntk else K


def _kernel(X, X2, block_rows, device, want_ntk: bool, lengths: tuple[int, ...] = ()):
    dev = None if device is None else resolve_device(device)
    X = as_sequences(X, "X", device=dev)
    symmetric = X2 is None
    X2 = X if symmetric else as_sequences(X2, "X2", device=X.device)
    check_pair(X, X2)
    n, n2 = X.shape[0], X2.shape[0]
    if block_rows is None:
        entries = _CUDA_BLOCK_ENTRIES if X.device.type == "cuda" else _BLOCK_ENTRIES
        block_rows = max(8, entries // max(1, n2))
    elif isinstance(block_rows, bool) or not (isinstance(block_rows, int) and block_rows >= 1):
        raise ValueError(f"block_rows must be an integer >= 1 or None, got {block_rows!r}")
    if lengths:
        # Only the steps up to the longest requested prefix are needed.
        X, X2 = X[:, : max(lengths)], X2[:, : max(lengths)]
    q, q2 = step_norms(X), step_norms(X2)
    outs = [torch.empty((n, n2), dtype=torch.float64, device=X.device) for _ in (lengths or (0,))]
    for a in range(0, n, block_rows):
        b = min(n, a + block_rows)
        # Symmetric case: the block's columns from a on (upper triangle), mirrored below.
        c0 = a if symmetric else 0
        blks = _recursion(X[a:b], X2[c0:], q[a:b], q2[c0:], want_ntk, self_pairs=symmetric, snapshots=lengths)
        for out, blk in zip(outs, blks if lengths else [blks]):
            out[a:b, c0:] = blk
            if symmetric:
                # The diagonal block was computed in full; its two triangles differ by rounding, so the
                # upper one is mirrored to make the kernel exactly symmetric.
                diag = out[a:b, a:b]
                diag.copy_(torch.triu(diag) + torch.triu(diag, diagonal=1).T)
                if b < n:
                    out[b:, a:b] = blk[:, b - c0 :].T
    return outs if lengths else outs[0]


def infinite_ntk(X, X2=None, *, block_rows: int | None = None, device=None) -> torch.Tensor:
    """H_inf(X, X2): the (n, n2) infinite-width NTK of the W-trained RNN, float64.

    ``X``, ``X2``: (n, L, d) tensors or arrays with the same (L, d); ``X2=None`` means X2 = X.
    ``block_rows`` rows are processed at a time (default: about 4M entries per temporary);
    ``device`` moves the computation (default: X's device).
    """
    return _kernel(X, X2, block_rows, device, want_ntk=True)


def infinite_ntk_prefixes(
    X, X2=None, *, lengths, block_rows: int | None = None, device=None
) -> dict[int, torch.Tensor]:
    """H_inf of the length-l prefixes X[:, :l] (against X2[:, :l]) for every l in ``lengths``, in one pass.

    The forward accumulation visits l = 1..max(lengths) once; the accumulator after step l is the kernel
    of the length-l prefixes, so an L grid costs one kernel of the longest length (plus a copy per
    requested length: memory len(lengths) n n2 float64).
    """
    try:
        wanted = tuple(sorted({int(v) for v in lengths}))
    except (TypeError, ValueError):
        raise ValueError(f"lengths must be an iterable of integers, got {lengths!r}") from None
    L = as_sequences(X, "X").shape[1]
    if not wanted or wanted[0] < 1 or wanted[-1] > L:
        raise ValueError(f"lengths must be non-empty integers in 1..L = {L}, got {lengths!r}")
    kernels = _kernel(X, X2, block_rows, device, want_ntk=True, lengths=wanted)
    return dict(zip(wanted, kernels))


def nngp_kernel(X, X2=None, *, block_rows: int | None = None, device=None) -> torch.Tensor:
    """K_L(X, X2): the NNGP kernel of the last hidden state, lim <h_L(x), h_L(x')>; float64."""
    return _kernel(X, X2, block_rows, device, want_ntk=False)
