"""
Network meta-analysis from arm-level data: contrasts against a reference
treatment with their within-study covariances, and the design-by-treatment
inconsistency model with its global Wald test.
"""
from .container import NetworkContrasts
from .contrasts import multiarm_contrasts, network_contrasts
from .inconsistency import InconsistencyTest, network_inconsistency_test

__all__ = ["InconsistencyTest", "NetworkContrasts", "multiarm_contrasts",
           "network_contrasts", "network_inconsistency_test"]
