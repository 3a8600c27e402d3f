"""``python -m claims ...`` is the ``rnnclaims`` console script."""

import sys

from claims.cli import main

if __name__ == "__main__":  # guarded: spawn-context workers re-import the parent's __main__
    sys.exit(main())
