"""
The second stage: a :class:`~statsmodels_mixmeta.MixMeta` model of a first
stage's estimates ``y`` and covariances ``S``, its formula written over the
group-level covariates, its coefficients named by the first-stage
coefficients.

The model is built from a formula (so that ``random=``, factors and
predictions at new covariate values work as for any formula model) on a
frame of the outcomes and covariates; its design is then renamed
(:attr:`Design.coef_names`) so that an intercept-only pooling reports the
first-stage names (``"x"``, not ``"x:Intercept"``) and a meta-regression
``"<param>:<term>"`` for every ``k``.
"""
import dataclasses

import pandas as pd

from ..model import MixMeta

#: Model keywords that the two-stage result supplies itself.
RESERVED = ("S", "data", "formula", "Scor", "addS")


def _rhs(formula_rhs):
    if not isinstance(formula_rhs, str):
        raise ValueError(
            f"formula_rhs must be a string such as '~ 1' or '~ lat', got "
            f"{formula_rhs!r}")
    rhs = formula_rhs.strip()
    if rhs.startswith("~"):
        rhs = rhs[1:].strip()
    if not rhs or "~" in rhs:
        raise ValueError(
            f"formula_rhs {formula_rhs!r} must be the right-hand side of a "
            "formula, e.g. '~ 1' or '~ lat + C(region)'")
    return rhs


def _outcome_columns(names, covariates):
    """The param names as formula outcomes when they can be, else
    placeholders (a name with '+' or '~', or equal to a covariate)."""
    taken = set() if covariates is None else {str(c) for c in covariates}
    safe = all(("+" not in name and "~" not in name and name == name.strip()
                and name and name not in taken) for name in names)
    if safe:
        return list(names)
    return [f"_outcome{j}" for j in range(len(names))]


def second_stage_model(two_stage, formula_rhs, kwargs):
    """The MixMeta model of :meth:`TwoStage.mixmeta`."""
    reserved = sorted(set(kwargs) & set(RESERVED))
    if reserved:
        raise ValueError(
            f"TwoStage.mixmeta supplies {reserved} itself (from the first "
            "stage); pass only model options such as method, bscov, random")
    rhs = _rhs(formula_rhs)
    names = list(two_stage.param_names)
    columns = _outcome_columns(names, two_stage.covariates)
    frame = pd.DataFrame(two_stage.y.to_numpy(), index=two_stage.groups,
                         columns=columns)
    if two_stage.covariates is not None:
        frame = frame.join(two_stage.covariates)
    formula = " + ".join(columns) + " ~ " + rhs
    model = MixMeta.from_formula(formula, data=frame, S=two_stage.S,
                                 **kwargs)
    design = model.design
    terms = list(design.term_names)
    if terms == ["Intercept"]:
        coef_names = tuple(names)
    else:
        coef_names = tuple(f"{o}:{t}" for o in names for t in terms)
    renamed = dataclasses.replace(design, outcome_names=tuple(names),
                                  coef_names=coef_names)
    return MixMeta.from_design(
        renamed, method=model.method, bscov=model.bscov,
        psi_fix=model.psi_fix, init_psi=model.init_psi,
        vc_adjust=model.vc_adjust)
