"""
Many independent univariate meta-analyses at once (:func:`fit_many`), for
voxel-wise, gene-wise or simulation-study fits.
"""
from .fit import fit_many
from .results import ManyResults, Status

__all__ = ["ManyResults", "Status", "fit_many"]
