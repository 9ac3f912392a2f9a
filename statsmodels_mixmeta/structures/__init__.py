"""
Stage 1: parameterisations of the random-effects covariance Psi.

:mod:`.psi` maps structure parameters ``theta`` to Psi with analytic
derivatives, bounds and scale (the interface they share is in
:mod:`.psi_base`); :mod:`.levels` concatenates the levels'
parameters; :mod:`.psd` is the one projection onto the positive definite
matrices.  Imports nothing else from the package.
"""
from .psi import STRUCTURE_NAMES, PsiStructure, make_structure  # noqa: F401
from .levels import (RandomPart, canonical_bscov, per_level,  # noqa: F401
                     random_part)
from .psd import PSD_FLOOR, project_psd  # noqa: F401
