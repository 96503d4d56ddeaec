"""fnas inside other tools: :mod:`fnas.integration.optuna` (``FnasSampler``, the ``fnas``
strategy as an Optuna sampler; the ``optuna`` extra). Nothing here is imported by ``import
fnas``: each module needs its tool."""
