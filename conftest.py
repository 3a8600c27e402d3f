"""Pytest configuration of the source checkout.

- Hypothesis settings profiles for the project's own tests: ``ci`` (derandomize=True, database=None,
  deadline=None, print_blob=True) and ``dev`` (defaults with deadline=None); loaded from
  ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set, else ``dev``.
- The rnn-claims pytest plugin (options, ``device`` fixture, record collection, threads per xdist
  worker) comes from the ``pytest11`` entry point of the installed package; a checkout that is not
  installed loads it here.
"""

from __future__ import annotations

import os
from importlib import metadata

from hypothesis import settings

settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev"))

if not any(ep.value == "claims.pytest_plugin" for ep in metadata.entry_points(group="pytest11")):
    pytest_plugins = ["claims.pytest_plugin"]
