"""Profiles: the global grid (widths m, lengths L, input regimes) and the effort per cell.

A profile fixes the axes every claim sweeps (SPEC section 4, "Axes") and how much work one cell may do
(the example budget of the sequential test, the shrink budget). Claims keep their own per-profile
settings (n, omega grids, ...) in ``Claim.settings``, keyed by ``profile.name``; the profile does not
know them. Other packages add profiles with :func:`register_profile`.

- ``smoke``: seconds per claim on 2 CPU cores (CI).
- ``quick``: the default main job, under 10 minutes on 2 CPU cores.
- ``standard``: the SPEC's "about an hour on a CPU" needs 10-16 CPU workers or a GPU (docs/SPEC_NOTES.md).
- ``full``: GPU or a cluster.

Budgets: the sequential test (claims.verdict) stops as soon as it decides; with delta = 0.1 and
alpha = beta = 0.05 a holding cell needs at least 12 examples (17 with one failure, 23 with two) and a
failing one 3, so the budget bounds only the undecided cells.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["REGIMES", "Profile", "PROFILES", "PROFILE_NAMES", "get_profile", "register_profile"]

REGIMES: tuple[str, ...] = ("normalized", "unit", "unnormalized")


@dataclass(frozen=True)
class Profile:
    """One grid of the sweep and the effort spent per cell.

    widths / lengths / regimes: the global axes m, L and input regime, ascending.
    examples: the example budget of a cell: at most this many hypothesis-drawn recipes (each with its
        own init seed); the sequential test usually stops earlier.
    shrink_budget: at most this many extra evaluations to shrink a failing example (0: no shrinking).
    n_default / d_default: sample count and input dimension for claims without their own setting.
    n_max: the largest n a claim should use under this profile (sample-complexity sweeps stop there).
    description: one line for the report and ``rnnclaims list``.
    """

    name: str
    widths: tuple[int, ...]
    lengths: tuple[int, ...]
    regimes: tuple[str, ...]
    examples: int
    shrink_budget: int
    n_default: int
    d_default: int
    n_max: int
    description: str

    def __post_init__(self) -> None:
        for axis in ("widths", "lengths"):
            values = getattr(self, axis)
            if not values or any(not isinstance(v, int) or v < 1 for v in values):
                raise ValueError(f"profile {self.name}: {axis} must be positive integers, got {values}")
            if list(values) != sorted(set(values)):
                raise ValueError(f"profile {self.name}: {axis} must be strictly ascending, got {values}")
        unknown = [r for r in self.regimes if r not in REGIMES]
        if not self.regimes or unknown:
            raise ValueError(f"profile {self.name}: regimes must be a non-empty subset of {REGIMES}")
        if self.examples < 1:
            raise ValueError(f"profile {self.name}: examples must be >= 1, got {self.examples}")
        if self.shrink_budget < 0:
            raise ValueError(f"profile {self.name}: shrink_budget must be >= 0, got {self.shrink_budget}")

    @property
    def max_width(self) -> int:
        return self.widths[-1]

    @property
    def max_length(self) -> int:
        return self.lengths[-1]

    def to_dict(self) -> dict:
        """JSON-safe form (stored in ``_run.json``)."""
        return {
            "name": self.name,
            "widths": list(self.widths),
            "lengths": list(self.lengths),
            "regimes": list(self.regimes),
            "examples": self.examples,
            "shrink_budget": self.shrink_budget,
            "n_default": self.n_default,
            "d_default": self.d_default,
            "n_max": self.n_max,
            "description": self.description,
        }


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            name="smoke",
            widths=(64, 256),
            lengths=(2, 4),
            regimes=REGIMES,
            examples=20,
            shrink_budget=8,
            n_default=8,
            d_default=4,
            n_max=256,
            description="CI: seconds per claim on 2 CPU cores; m in {64, 256}, L in {2, 4}",
        ),
        Profile(
            name="quick",
            widths=(128, 512, 2048),
            lengths=(2, 4, 8, 16),
            regimes=REGIMES,
            examples=40,
            shrink_budget=16,
            n_default=16,
            d_default=4,
            n_max=2048,
            description="the default main job, under 10 minutes on 2 CPU cores; m up to 2048, L up to 16",
        ),
        Profile(
            name="standard",
            widths=(256, 1024, 2048, 4096, 8192),
            lengths=(2, 4, 8, 16, 32, 64),
            regimes=REGIMES,
            examples=60,
            shrink_budget=32,
            n_default=32,
            d_default=8,
            n_max=8192,
            description="hours on a 2-core CPU, about an hour on 10-16 workers or a GPU; m up to 8192, L up to 64",
        ),
        Profile(
            name="full",
            widths=(512, 2048, 8192, 16384, 32768),
            lengths=(2, 4, 8, 16, 32, 64, 128, 256),
            regimes=REGIMES,
            examples=100,
            shrink_budget=64,
            n_default=64,
            d_default=8,
            n_max=16384,
            description="GPU or a cluster; m up to 32768, L up to 256, n up to 16384",
        ),
    )
}

PROFILE_NAMES: tuple[str, ...] = tuple(PROFILES)  # the built-in ones


def register_profile(profile: Profile) -> Profile:
    """Add a profile (e.g. from a third-party catalogue); a different profile under an existing name is
    a ``ValueError``."""
    if not isinstance(profile, Profile):
        raise TypeError(f"register_profile() expects a claims.profiles.Profile, got {type(profile).__name__}")
    key = profile.name.strip().lower()
    if key in PROFILES and PROFILES[key] != profile:
        raise ValueError(f"profile {profile.name!r} is already registered with other settings")
    PROFILES[key] = profile
    return profile


def get_profile(name: str | Profile) -> Profile:
    """The profile called ``name`` (case-insensitive); a Profile passes through unchanged.

    Unknown names raise ``ValueError`` listing the allowed ones."""
    if isinstance(name, Profile):
        return name
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in PROFILES:
        raise ValueError(f"unknown profile {name!r}; allowed: {', '.join(PROFILES)}")
    return PROFILES[key]
