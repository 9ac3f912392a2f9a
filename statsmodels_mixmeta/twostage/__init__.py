"""
The two-stage workflow: fit the same regression in each group of
individual-level data (the first stage), collect the estimates and their
covariances, and pool them with a MixMeta model (the second stage).
"""
from .result import FirstStageWarning, TwoStage
from .run import two_stage

two_stage.from_results = TwoStage.from_results

__all__ = ["FirstStageWarning", "TwoStage", "two_stage"]
