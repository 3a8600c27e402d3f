"""rnn_core: the numerical core of rnn-claims.

The ReLU Elman RNN of Wang, Shen, Hu, Cao (NeurIPS 2021), its empirical NTK with respect to the
recurrent matrix W (structured: never the n m^2 Jacobian), the infinite-width kernels, data, targets
and training. Free of pytest and hypothesis. Kernels, eigenvalues and solves are float64.

    import rnn_core
    p = rnn_core.init_params(m, d, seed=0, device="cpu", dtype=torch.float64)
    H = rnn_core.empirical_ntk(p, X, X2=None)     # (n, n2), normalized by 1/m, W trained
    K = rnn_core.infinite_ntk(X, X2=None)         # (n, n2), H_inf of SPEC section 2
"""

from rnn_core._device import resolve_device
from rnn_core.kernels import infinite_ntk, infinite_ntk_diag, nngp_kernel
from rnn_core.model import (
    Forward,
    RNNParams,
    backward_deltas,
    forward,
    init_params,
    output,
    per_example_grad_W,
)
from rnn_core.ntk import NTKImplementation, empirical_ntk, empirical_ntk_reference

__all__ = [
    "Forward",
    "NTKImplementation",
    "RNNParams",
    "backward_deltas",
    "empirical_ntk",
    "empirical_ntk_reference",
    "forward",
    "infinite_ntk",
    "infinite_ntk_diag",
    "init_params",
    "nngp_kernel",
    "output",
    "per_example_grad_W",
    "resolve_device",
]
