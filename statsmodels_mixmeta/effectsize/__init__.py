"""
Effect sizes and their within-study (co)variances computed from raw data
(counts, means, correlations, rates), the inputs ``y`` and ``S`` of a
MixMeta model, with metafor's measure and argument names.
"""
from .correlated import escalc_correlated, phi_coefficient
from .escalc import escalc
from .multivariate import MultivariateEffects

__all__ = ["MultivariateEffects", "escalc", "escalc_correlated",
           "phi_coefficient"]
