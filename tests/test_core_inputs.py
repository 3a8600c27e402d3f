"""Bad input to the numerical core fails with a ValueError that names the parameter."""

import math

import numpy as np
import pytest
import torch

import rnn_core


@pytest.fixture
def p():
    return rnn_core.init_params(8, 3, seed=0)


@pytest.mark.parametrize(
    "X, pattern",
    [
        (np.zeros((2, 3)), r"X must have shape \(n, L, d\)"),
        (np.zeros((2, 0, 3)), r"sequence length L must be >= 1"),
        (np.zeros((0, 2, 3)), r"at least one sequence"),
        (np.zeros((2, 2, 4)), r"d = 4.*expects d = 3"),
        (np.full((2, 2, 3), np.nan), r"NaN or inf"),
        (np.full((2, 2, 3), np.inf), r"NaN or inf"),
        ("not an array", r"numeric array"),
    ],
)
def test_bad_sequences_are_named(p, X, pattern):
    for fn in (lambda: rnn_core.forward(p, X), lambda: rnn_core.empirical_ntk(p, X)):
        with pytest.raises(ValueError, match=pattern):
            fn()


@pytest.mark.parametrize("fn", [rnn_core.infinite_ntk, rnn_core.nngp_kernel, rnn_core.infinite_ntk_diag])
def test_kernels_reject_bad_sequences(fn):
    with pytest.raises(ValueError, match="L must be >= 1"):
        fn(np.zeros((3, 0, 2)))
    with pytest.raises(ValueError, match="NaN or inf"):
        fn(np.full((3, 2, 2), np.nan))


def test_kernel_pairs_must_share_length_and_dim(p):
    X = torch.randn(3, 4, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"X and X2 must share \(L, d\)"):
        rnn_core.infinite_ntk(X, torch.randn(2, 5, 3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"X and X2 must share \(L, d\)"):
        rnn_core.empirical_ntk(p, X, torch.randn(2, 5, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    "kwargs, pattern",
    [
        ({"m": 0, "d": 3}, r"m must be an integer >= 1"),
        ({"m": 2.5, "d": 3}, r"m must be an integer >= 1"),
        ({"m": 4, "d": 0}, r"d must be an integer >= 1"),
        ({"m": 4, "d": 3, "device": "tpu"}, r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N'"),
        ({"m": 4, "d": 3, "dtype": torch.float16}, r"dtype must be torch.float64 or torch.float32"),
        ({"m": 4, "d": 3, "w_std_scale": -1.0}, r"w_std_scale must be a finite number > 0"),
        ({"m": 4, "d": 3, "w_std_scale": math.nan}, r"w_std_scale must be a finite number > 0"),
    ],
)
def test_init_params_errors(kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        rnn_core.init_params(**kwargs)


def test_unknown_activation_and_implementation(p):
    X = torch.randn(2, 3, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"activation must be one of \('relu', 'step'\)"):
        rnn_core.forward(p, X, activation="tanh")
    with pytest.raises(ValueError, match="implementation must be one of"):
        rnn_core.empirical_ntk(p, X, implementation="magic")


def test_block_rows_error():
    with pytest.raises(ValueError, match="block_rows must be an integer >= 1"):
        rnn_core.infinite_ntk(np.ones((2, 2, 2)), block_rows=0)


def test_cuda_request_without_cuda_is_a_clear_error():
    if torch.cuda.is_available():
        pytest.skip("CUDA is present: the request is valid here")
    with pytest.raises(ValueError, match="CUDA is not available"):
        rnn_core.resolve_device("cuda")
    assert rnn_core.resolve_device("auto") == torch.device("cpu")


def test_same_weights_on_any_chunking_and_reproducible():
    a = rnn_core.init_params(16, 3, seed=7)
    b = rnn_core.init_params(16, 3, seed=7)
    c = rnn_core.init_params(16, 3, seed=8)
    assert torch.equal(a.W, b.W) and torch.equal(a.B, b.B)
    assert not torch.equal(a.W, c.W)
    # Variance of the paper's initialization: W_ij ~ N(0, 2/m); with 2048^2 draws the sample variance
    # is within 1% of 2/m (its relative standard deviation is sqrt(2/4M) ~ 7e-4).
    big = rnn_core.init_params(2048, 2, seed=0)
    assert abs(float(big.W.var()) * 2048 / 2.0 - 1.0) < 0.01
    assert abs(float(big.B.var()) - 1.0) < 0.1
