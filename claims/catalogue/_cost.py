"""The built-in catalogue's cost model: seconds of one example on one CPU core, from what it computes.

The machine enters through the constants below, once. An example's seconds are a roofline estimate:

    seconds = EXAMPLE_OVERHEAD_S + max(flops / FLOPS_PER_S, bytes / BYTES_PER_S)
              + draws / DRAWS_PER_S + steps * STEP_OVERHEAD_S,

flops at the float64 matmul peak, or the bytes the example streams from memory, whichever is slower: a
product of a few rows with an m x m weight matrix is bound by reading the matrix (8 m^2 bytes for 2 rows
m^2 flops), a training step over n >= 64 sequences by its flops; the kernel recursion of H_inf is a
dozen elementwise passes per entry and step, all memory. Each claim states its flops, bytes, draws and
steps with the helpers here (:func:`network`, :func:`gd`, :func:`kernel_bytes`). The scheduler only needs
the order of magnitude (it submits expensive cells first and balances shards), and it rescales each
claim by the durations its records measured (:func:`claims.scheduling.calibrate`).
"""

from __future__ import annotations

__all__ = [
    "FLOPS_PER_S", "BYTES_PER_S", "DRAWS_PER_S", "EXAMPLE_OVERHEAD_S", "STEP_OVERHEAD_S",
    "KERNEL_BYTES_PER_ENTRY", "seconds", "network_flops", "network_bytes", "network", "gd", "kernel_bytes",
]

#: float64 matmul peak of one core, flop/s (a training step over 64+ sequences reaches it)
FLOPS_PER_S = 3e10
#: bytes per second one core streams from memory (a forward pass over 8 sequences does 2 * 8 / 8 = 2 flop
#: per byte of W, so it runs at 8e9 flop/s); the value that fits the quick profile's measured cells best
#: (docs/MEASUREMENTS.md, "Cost model")
BYTES_PER_S = 4e9
#: Gaussian numbers drawn per second by init_params (CPU randn in float64, one core)
DRAWS_PER_S = 1.5e8
#: fixed cost of one example (hypothesis draw, data, Python overhead), seconds
EXAMPLE_OVERHEAD_S = 0.004
#: Python and autograd overhead of one gradient-descent step, seconds
STEP_OVERHEAD_S = 5e-4
#: bytes one entry of a kernel matrix streams per step of the arccos recursion (about a dozen float64 passes)
KERNEL_BYTES_PER_ENTRY = 100.0


def seconds(flops: float = 0.0, bytes_moved: float = 0.0, draws: float = 0.0, examples: float = 1.0,
            steps: float = 0.0) -> float:
    """The roofline estimate of the module docstring for ``examples`` examples doing ``flops`` flops,
    streaming ``bytes_moved`` bytes, drawing ``draws`` Gaussians and taking ``steps`` optimizer steps in all."""
    return (examples * EXAMPLE_OVERHEAD_S + max(flops / FLOPS_PER_S, bytes_moved / BYTES_PER_S)
            + draws / DRAWS_PER_S + steps * STEP_OVERHEAD_S)


def network_flops(m: int, n: int, L: int, *, backward: bool = False, ntk: bool = False) -> float:
    """Flops of one forward pass over n sequences (2 n L m^2), plus the backward pass (the same again)
    and the NTK's two Gram matrices ((n L)^2 m each) when asked."""
    flops = 2.0 * n * L * m * m
    if backward:
        flops *= 2.0
    if ntk:
        flops += 2.0 * (n * L) ** 2 * m
    return flops


def network_bytes(m: int, L: int, *, backward: bool = False) -> float:
    """Bytes of W a pass streams: 8 m^2 per step, L steps, twice with the backward pass."""
    return 8.0 * m * m * L * (2.0 if backward else 1.0)


def network(m: int, n: int, L: int, *, backward: bool = False, ntk: bool = False, draws: float = 0.0) -> float:
    """Seconds of one network evaluation over n sequences (:func:`network_flops`, :func:`network_bytes`)."""
    return seconds(network_flops(m, n, L, backward=backward, ntk=ntk), network_bytes(m, L, backward=backward),
                   draws=draws)


def gd(m: int, n: int, L: int, steps: float) -> float:
    """Seconds of ``steps`` full-batch gradient-descent steps on n sequences, without the example's fixed
    cost: each a forward, a backward and an update (6 n L m^2 flops, 3 passes over W)."""
    return seconds(6.0 * n * L * m * m * steps, 3.0 * network_bytes(m, L) * steps, examples=0.0, steps=steps)


def kernel_bytes(entries: float, L: int) -> float:
    """Bytes of the H_inf recursion over ``entries`` kernel entries and L steps."""
    return KERNEL_BYTES_PER_ENTRY * entries * L
