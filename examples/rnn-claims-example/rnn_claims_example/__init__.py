"""rnn-claims-example: a third-party catalogue for rnn-claims.

It brings one claim, LRELU-FWD (forward stability at initialization of a leaky-ReLU Elman RNN with the
variance that preserves the second moment for that activation), in its own registry
:data:`rnn_claims_example.claims.REGISTRY`, announced through the entry point group
``rnn_claims.catalogues``. Importing this package is cheap: the claim module is imported when rnn-claims
resolves the registry.
"""

__version__ = "0.1.0"
