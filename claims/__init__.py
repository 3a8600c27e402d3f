"""rnn-claims: executable, property-based claims about ReLU Elman RNNs.

The claims operationalize the lemmas and theorems of Wang, Shen, Hu, Cao, "On the Provable
Generalization of Recurrent Neural Networks" (NeurIPS 2021). Pieces:

- :mod:`claims.base`: Claim, Outcome, Context, cell keys;
- :mod:`claims.registry`: register / all_claims / get_claim, in registration order (the built-in
  catalogue lives in :mod:`claims.catalogue`, one module per claim);
- :mod:`claims.profiles`: the grids (smoke, quick, standard, full);
- :mod:`claims.cell`: evaluate one cell (draw examples, the sequential verdict, shrink) into a record;
- :mod:`claims.verdict`: the verdict rule;
- :mod:`claims.schema`: the record format and its validation; :mod:`claims.store`: the results folder
  (loading, atomic writes, ``_run.json``);
- :mod:`claims.lifecycle`: one run (plan, reconcile the folder, execute, finalize), whose front ends
  are :mod:`claims.session` (``rnnclaims run``), :mod:`claims.pytest_plugin` (``pytest claims``) and
  :mod:`claims.merge`;
- :mod:`claims.runner`: the API facade, run_cell / run_profile (with the report) / reproduce;
- :mod:`claims.cli`: the ``rnnclaims`` console script.

Words: a *cell* is one point of a claim's grid; *evaluating* a cell (:func:`claims.cell.evaluate_cell`)
gives its record; a *run* is one lifecycle over a profile's cells into one results folder, and a
*sitting* one process's part of it (``_run.json`` lists them). ``test_cell`` is the pytest item of one
cell; ``run_task`` is an executor evaluating one cell in a worker.

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
