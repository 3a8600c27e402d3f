"""rnn-claims: executable, property-based claims about ReLU Elman RNNs.

The claims operationalize the lemmas and theorems of Wang, Shen, Hu, Cao, "On the Provable
Generalization of Recurrent Neural Networks" (NeurIPS 2021). Pieces:

- :mod:`claims.base`: Claim, Outcome, Context, cell keys;
- :mod:`claims.registry`: register / all_claims / get_claim (the catalogue lives in
  :mod:`claims.catalogue`, one module per claim);
- :mod:`claims.profiles`: the grids (smoke, quick, standard, full);
- :mod:`claims.verdict`: the verdict rule;
- :mod:`claims.store`: atomic JSON records;
- :mod:`claims.runner`: run_cell / run_profile / reproduce;
- :mod:`claims.cli`: the ``rnnclaims`` console script.

Importing this package is cheap-ish (torch, through :mod:`claims.base`); the catalogue is imported only
when a claim is looked up.
"""

from claims.base import Claim, Context, Outcome, cell_key
from claims.profiles import Profile, get_profile
from claims.registry import all_claims, get_claim, register

__all__ = [
    "Claim",
    "Context",
    "Outcome",
    "cell_key",
    "Profile",
    "get_profile",
    "all_claims",
    "get_claim",
    "register",
]
