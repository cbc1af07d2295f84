"""The marketplace data layer: contracts, the synthetic marketplace, validation and importers.

Import the submodules directly (``getit_ml.data.contracts``...); this package imports nothing.
"""
