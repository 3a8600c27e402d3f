"""rnn_core: the numerical core of rnn-claims.

The ReLU Elman RNN of Wang, Shen, Hu, Cao (NeurIPS 2021), its empirical NTK with respect to the
recurrent matrix W (structured: never the n m^2 Jacobian), the infinite-width kernels, data, targets
and training. Free of pytest and hypothesis. Kernels, eigenvalues and solves are float64.

    import rnn_core
    p = rnn_core.init_params(m, d, seed=0, device="cpu", dtype=torch.float64)
    H = rnn_core.empirical_ntk(p, X, X2=None)     # (n, n2), normalized by 1/m, W trained
    K = rnn_core.infinite_ntk(X, X2=None)         # (n, n2), H_inf of SPEC section 2
    S = rnn_core.perturbation_statistics(p, X, omega, R=R)  # W' = W + omega R: r_h, flips, r_g, first order

One batch-major forward/backward pass (rnn_core.model) serves the forward, the NTK features,
training and the perturbed networks; rnn_core.reference is the independent oracle (autograd,
torch.func) the tests compare it with, and the baselines the benchmarks time it against.
"""

from rnn_core._device import resolve_device
from rnn_core.data import Recipe, TargetSpec, make_dataset, make_inputs, pairwise_separation, separation
from rnn_core.kernels import infinite_ntk, infinite_ntk_diag, nngp_kernel
from rnn_core.model import (
    Perturbation,
    RNNParams,
    RNNPass,
    backward,
    backward_deltas,
    forward,
    init_params,
    output,
    per_example_grad_W,
)
from rnn_core.linalg import (
    condition_number,
    eigvalsh_sym,
    kernel_regression,
    lambda_min_max,
    quadratic_form,
    scale_free_quadratic_form,
)
from rnn_core.numerics import guarded_ratio
from rnn_core.ntk import NTKImplementation, empirical_ntk, empirical_ntk_reference
from rnn_core.perturb import (
    PerturbationStats,
    gradient_top_singular,
    perturbation_statistics,
    perturbed_pass,
)
from rnn_core.targets import Standardizer, make_target
from rnn_core.train import TrainResult, predict_centered, train_gd

__all__ = [
    "Perturbation",
    "PerturbationStats",
    "RNNPass",
    "Recipe",
    "Standardizer",
    "TargetSpec",
    "TrainResult",
    "condition_number",
    "eigvalsh_sym",
    "guarded_ratio",
    "kernel_regression",
    "lambda_min_max",
    "make_dataset",
    "make_inputs",
    "make_target",
    "pairwise_separation",
    "predict_centered",
    "quadratic_form",
    "scale_free_quadratic_form",
    "separation",
    "train_gd",
    "NTKImplementation",
    "RNNParams",
    "backward",
    "backward_deltas",
    "empirical_ntk",
    "empirical_ntk_reference",
    "forward",
    "gradient_top_singular",
    "infinite_ntk",
    "infinite_ntk_diag",
    "init_params",
    "nngp_kernel",
    "output",
    "per_example_grad_W",
    "perturbation_statistics",
    "perturbed_pass",
    "resolve_device",
]
