"""
Stage 5: results of a fit, computed lazily: inference, summary,
heterogeneity, predictions and BLUPs, one topic a module.
"""
from .core import MixMetaResults, MixMetaResultsWrapper  # noqa: F401
