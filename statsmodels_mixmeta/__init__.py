"""
statsmodels-mixmeta: the extended mixed-effects framework for meta-analysis
(Sera, Armstrong, Blangiardo & Gasparrini, Statistics in Medicine 2019) as a
statsmodels extension.

Importing the package makes ``statsmodels.formula.api.mixmeta`` available,
the same function as :meth:`MixMeta.from_formula`.
"""
import statsmodels.formula.api as _smf

from . import datasets
from .design.covariance import inputcov, unvech, vech
from .design.dose_response import (greenland_longnecker,
                                   greenland_longnecker_addS)
from .effectsize import escalc, escalc_correlated
from .many import ManyResults, fit_many
from .model import MixMeta
from .network import (InconsistencyTest, NetworkContrasts,
                      multiarm_contrasts, network_contrasts,
                      network_inconsistency_test)
from .results import MixMetaResults
from .results.comparison import compare
from .simulation import simulate
from .twostage import FirstStageWarning, TwoStage, two_stage
from .twostage.compare import side_by_side

mixmeta = MixMeta.from_formula
_smf.mixmeta = mixmeta
if "mixmeta" not in _smf.__all__:
    _smf.__all__.append("mixmeta")

__all__ = ["FirstStageWarning", "InconsistencyTest", "MixMeta",
           "MixMetaResults", "TwoStage", "ManyResults", "NetworkContrasts",
           "compare", "datasets", "escalc", "escalc_correlated", "fit_many",
           "greenland_longnecker", "greenland_longnecker_addS", "inputcov",
           "mixmeta", "multiarm_contrasts", "network_contrasts",
           "network_inconsistency_test", "side_by_side", "simulate",
           "two_stage", "unvech", "vech"]
__version__ = "0.1.0"
