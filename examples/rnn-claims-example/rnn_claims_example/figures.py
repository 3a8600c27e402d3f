"""The report figure of LRELU-FWD, attached to the claim (``Claim.figures``).

The report calls each figure as ``fn(claim_id, records, profile_name)`` and expects a
``reports.figures.Figure`` (key, title, svg, caption), or ``reports.figures.Missing`` with a short
reason when the records lack what the figure needs. matplotlib is imported only when the figure is
drawn, so running the claim never imports it.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

__all__ = ["ratio_envelopes", "ratio_per_layer"]


def ratio_envelopes(records: list[dict]) -> dict[tuple[bool, float, int], dict[int, tuple[float, float]]]:
    """Per (control, slope a, width m): per layer l, (smallest "min", largest "max") ratio over every
    example, regime and length of the records (finished cells only)."""
    env: dict[tuple[bool, float, int], dict[int, list[float]]] = defaultdict(dict)
    for rec in records:
        if rec.get("verdict") in ("skipped", "error", None):
            continue
        params = rec.get("params") or {}
        if "a" not in params or "m" not in params:
            continue
        key = (bool(rec.get("control")), float(params["a"]), int(params["m"]))
        for row in rec.get("series") or ():
            value = row.get("ratio")
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                continue
            lo_hi = env[key].setdefault(int(row["l"]), [math.inf, -math.inf])
            if row.get("stat") == "min":
                lo_hi[0] = min(lo_hi[0], value)
            elif row.get("stat") == "max":
                lo_hi[1] = max(lo_hi[1], value)
    return {k: {l: (v[0], v[1]) for l, v in sorted(layers.items())} for k, layers in env.items()}


def ratio_per_layer(claim_id: str, records: list[dict], profile: Any):
    """||h_l||^2 / q_l against the layer l: the band [min, max] over examples per (slope, width), the
    controls in grey, the pass band [1/2, 2] dashed."""
    from reports.figures import Figure, Missing, to_svg  # imports matplotlib (Agg backend)
    import matplotlib.pyplot as plt

    env = ratio_envelopes(records)
    if not env:
        raise Missing("no finished cells with per-layer ratio series")
    colours = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9"]
    markers = ["o", "s", "^", "D", "v", "P"]
    fig, ax = plt.subplots(figsize=(7.2, 3.8))
    main = sorted(k for k in env if not k[0])
    for i, key in enumerate(main):
        _, a, m = key
        layers = [l for l, (lo, hi) in env[key].items() if math.isfinite(lo) and math.isfinite(hi)]
        lo = [env[key][l][0] for l in layers]
        hi = [env[key][l][1] for l in layers]
        style = dict(color=colours[i % len(colours)], marker=markers[i % len(markers)], ms=4)
        ax.plot(layers, hi, ls="-", label=f"a={a:g}, m={m}", **style)
        ax.plot(layers, lo, ls="--", **style)
    for key in sorted(k for k in env if k[0]):
        _, a, m = key
        layers = list(env[key])
        ax.plot(layers, [env[key][l][1] for l in layers], color="#777777", ls=":", marker="x",
                label=f"control: ReLU variance, a={a:g}, m={m}")
    for y in (0.5, 2.0):
        ax.axhline(y, color="#000000", lw=1, ls="--")
    ax.axhline(1.0, color="#000000", lw=0.5)
    ax.set_yscale("log", base=2)
    ax.set_xlabel("layer l")
    ax.set_ylabel("||h_l||^2 / q_l (max solid, min dashed)")
    ax.grid(True, alpha=0.3)
    if len(env) <= 12:
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return Figure(
        "ratio-per-layer", f"{claim_id}: ||h_l||^2 / q_l per layer", to_svg(fig),
        "Largest (solid) and smallest (dashed) ratio ||h_l||^2 / q_l over every example, regime and length, "
        "per slope a and width m; the pass band [1/2, 2] is dashed. Grey: the negative control (the ReLU "
        f"variance 2/m with a leaky ReLU), which grows by 1 + a^2 per layer. Profile: {profile}.")
