"""
The global test of inconsistency in a network meta-analysis: the
consistency model and the design-by-treatment interaction model fitted to a
network's contrasts with the same Psi structure, and the Wald test of all
the interaction (inconsistency) coefficients at once.

The model's parameterisation and its design are in
:mod:`.inconsistency_design`.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from ..model import MixMeta
from .container import NetworkContrasts
from .inconsistency_design import long_format, network_designs

#: The MixMeta arguments that the two fits share.
MODEL_ARGUMENTS = ("method", "bscov", "psi_fix", "init_psi", "vc_adjust")


class InconsistencyTest:
    r"""
    The global Wald test of the design-by-treatment interaction.

    Attributes
    ----------
    consistency : MixMetaResults
        The consistency model: the contrasts against the reference, each
        with its own mean (the basic parameters), as
        ``MixMeta(contrasts.y, None, S=contrasts.S, ...)``.
    inconsistency : MixMetaResults
        The design-by-treatment interaction model, fitted in the long format
        (one row per observed contrast, grouped by study, with the study's
        known covariance and one random effect per contrast): the basic
        parameters, named as the contrast columns, then one deviation per
        identified design contrast, ``"ACD: D vs A"`` (design ``ACD``'s
        contrast of ``D`` against ``A`` minus its consistency value).
    designs : NetworkDesigns
        The designs, and which design contrasts carry a deviation.
    statistic, df, pvalue : float, int, float
        The Wald statistic of all deviations being zero,
        :math:`W = \hat\omega' \widehat{\mathrm{cov}}(\hat\omega)^{-1}
        \hat\omega`, on ``df`` (the number of deviations) degrees of freedom,
        referred to chi-square; with ``use_t=True`` in ``fit_kwargs`` the F
        statistic ``W / df`` on ``(df, df_denom)`` of the fit's
        ``df_method``.
    distribution : {"chi2", "F"}
    df_denom : float or None
        The F test's denominator degrees of freedom (None for chi2).
    """

    def __init__(self, consistency, inconsistency, designs, wald):
        self.consistency = consistency
        self.inconsistency = inconsistency
        self.designs = designs
        self.wald = wald
        self.df = len(designs.deviations)
        if inconsistency.use_t:
            self.distribution = "F"
            self.statistic = float(np.squeeze(wald.fvalue))
            self.df_denom = float(wald.df_denom)
        else:
            self.distribution = "chi2"
            self.statistic = float(np.squeeze(wald.statistic))
            self.df_denom = None
        self.pvalue = float(np.squeeze(wald.pvalue))

    @property
    def converged(self) -> bool:
        """Whether both fits converged."""
        return bool(self.consistency.converged
                    and self.inconsistency.converged)

    @property
    def deviations(self) -> pd.DataFrame:
        """The inconsistency coefficients: estimate, standard error, z (or
        t) and p-value."""
        names = self.designs.deviation_names
        res = self.inconsistency
        return pd.DataFrame(
            {"coef": res.params[names], "std err": res.bse[names],
             "t" if res.use_t else "z": res.tvalues[names],
             "P>|t|" if res.use_t else "P>|z|": res.pvalues[names]})

    @property
    def design_table(self) -> pd.DataFrame:
        """Each design: its studies, contrasts and deviations."""
        d = self.designs
        n_dev = np.bincount([i for i, _ in d.deviations],
                            minlength=len(d.designs))
        return pd.DataFrame(
            {"studies": d.n_studies,
             "contrasts": [len(t) - 1 for t in d.designs],
             "deviations": n_dev}, index=pd.Index(d.names, name="design"))

    def _test_text(self):
        if self.distribution == "F":
            return (f"F({self.df}, {self.df_denom:.4g}) = "
                    f"{self.statistic:.4f}, p = {self.pvalue:.4f}")
        return (f"chi2({self.df}) = {self.statistic:.4f}, "
                f"p = {self.pvalue:.4f}")

    def summary(self) -> str:
        """The test, the designs and the deviations, as text."""
        model = self.inconsistency.model
        d = self.designs
        lines = [
            "Design-by-treatment interaction (inconsistency) test",
            f"Treatments: {', '.join(d.treatments)} (reference "
            f"{d.reference}); {len(d.designs)} designs, "
            f"{len(d.study_design)} studies",
            f"Method: {model.method}; Psi structure: {model.bscov}; "
            f"converged: {'yes' if self.converged else 'no'}",
            f"Coefficients: consistency {len(self.consistency.params)}, "
            f"inconsistency {len(self.inconsistency.params)}",
            f"Global Wald test of the {self.df} deviations: "
            f"{self._test_text()}",
            "",
            self.design_table.to_string(),
            "",
            self.deviations.to_string(float_format=lambda v: f"{v:.4f}"),
        ]
        return "\n".join(lines)

    def __repr__(self):
        return (f"<InconsistencyTest: {self._test_text()}; "
                f"{len(self.designs.designs)} designs, "
                f"{len(self.inconsistency.params)} coefficients>")


def network_inconsistency_test(contrasts, *, fit_kwargs=None,
                               **model_kwargs):
    r"""
    Fit the consistency and design-by-treatment interaction models of a
    network and test all the interaction terms at once.

    Parameters
    ----------
    contrasts : NetworkContrasts
        Each study's contrasts against the reference, their within-study
        covariances and its design (with data augmentation every study has
        the reference arm).
    fit_kwargs : dict, optional
        Passed to both fits (``use_t``, ``df_method``, ``cov_type``, ...).
        With ``use_t=True`` the test is the F form on the fit's degrees of
        freedom rule.  ``maxiter`` is 1000 unless given (100 for a single
        fit): augmented reference arms leave the likelihood nearly flat
        along some directions of an unstructured Psi, and the smoking
        network's inconsistency fit needs more than 100 iterations of the
        finishing optimiser to reach its optimum.
    **model_kwargs
        The Psi structure and estimator of both models, as for
        :class:`~statsmodels_mixmeta.MixMeta`: ``method``, ``bscov`` (one
        structure name), ``psi_fix``, ``init_psi`` (matrices over the
        ``T - 1`` contrasts), ``vc_adjust``.

    Returns
    -------
    InconsistencyTest
        With the two fits, the statistic, its df and p-value.

    Notes
    -----
    The consistency model gives each contrast ``y_t`` (treatment ``t``
    against the reference) its own mean, the basic parameter ``delta_t``.
    The design-by-treatment interaction model of Higgins et al. (2012), in
    the parameterisation of White et al. (2012), adds to each design ``d``'s
    contrasts ``t`` against its base (the reference when ``d`` holds it,
    else its first treatment) a deviation ``omega_dt``, except for a spanning
    set of design contrasts whose deviations are not identified; with ``T``
    treatments there are ``sum_d (|d| - 1) - (T - 1)`` deviations (see
    :mod:`statsmodels_mixmeta.network.inconsistency_design`).  The test of
    ``omega = 0`` is the Wald statistic
    ``omega' cov(omega)^{-1} omega``, chi-square on that many degrees of
    freedom.  Without augmented reference arms the fit and the test do not
    depend on which deviations were dropped; with them, only through the
    augmented arms' negligible information.  Both models share the Psi
    structure; Psi is estimated in each.

    References
    ----------
    Higgins JPT, Jackson D, Barrett JK, Lu G, Ades AE, White IR.
    Consistency and inconsistency in network meta-analysis: concepts and
    models for multi-arm studies. Res Synth Methods 2012; 3: 98-110.

    White IR, Barrett JK, Jackson D, Higgins JPT. Consistency and
    inconsistency in network meta-analysis: model estimation using
    multivariate meta-regression. Res Synth Methods 2012; 3: 111-125.

    Examples
    --------
    The smoking network (README.rst builds ``arms``, one row per arm):

    >>> net = smm.network_contrasts(arms, "study", "treatment", "A",
    ...                             events="events", n="n")
    >>> result = smm.network_inconsistency_test(
    ...     net, bscov="prop", psi_fix=np.eye(3) + 1)
    >>> result.df, round(result.pvalue, 3)
    (7, 0.646)
    """
    if not isinstance(contrasts, NetworkContrasts):
        raise ValueError("contrasts must be a NetworkContrasts (see "
                         "smm.network_contrasts), got "
                         f"{type(contrasts).__name__}")
    _check_model_kwargs(model_kwargs)
    fit_kwargs = {} if fit_kwargs is None else dict(fit_kwargs)
    fit_kwargs.setdefault("maxiter", 1000)
    if not contrasts.y.index.is_unique:
        duplicated = contrasts.y.index[contrasts.y.index.duplicated()]
        raise ValueError("the studies (the index of contrasts.y) must be "
                         "unique; repeated: "
                         f"{sorted(set(map(str, duplicated)))[:5]}")
    designs = network_designs(contrasts)
    _check_moment_method(model_kwargs.get("method", "reml"), designs)
    if not designs.deviations:
        raise ValueError(
            "the network identifies no inconsistency: its designs "
            f"{list(designs.names)} form no loop (every design contrast "
            "is needed to estimate the basic parameters), so the "
            "design-by-treatment interaction model is the consistency model")
    consistency = MixMeta(contrasts.y, None, S=contrasts.S,
                          **model_kwargs).fit(**fit_kwargs)
    long = long_format(contrasts, designs)
    inconsistency = MixMeta(long["endog"], long["exog"],
                            groups=long["groups"], exog_re=long["exog_re"],
                            addS=long["addS"], **model_kwargs
                            ).fit(**fit_kwargs)
    names = list(inconsistency.params.index)
    selection = np.zeros((len(designs.deviations), len(names)))
    for row, name in enumerate(designs.deviation_names):
        selection[row, names.index(name)] = 1.0
    wald = inconsistency.wald_test(selection, use_f=inconsistency.use_t,
                                   scalar=True)
    return InconsistencyTest(consistency, inconsistency, designs, wald)


def _check_moment_method(method, designs):
    """Refuse the moment estimators when a design lacks the reference."""
    if method not in ("mm", "vc"):
        return
    augmented = [name for name, design in zip(designs.names,
                                              designs.designs)
                 if design[0] != designs.reference]
    if augmented:
        raise ValueError(
            f"method={method!r} cannot estimate Psi for the inconsistency "
            f"model of a network whose designs {augmented} lack the "
            f"reference {designs.reference!r}: their augmented reference "
            "arms (variance near 1/0.001) swamp the moment equations (Psi "
            "of order 1e17 on the smoking network); use method='reml' or "
            "'ml'")


def _check_model_kwargs(model_kwargs):
    """Refuse arguments the two fits cannot share."""
    unknown = sorted(set(model_kwargs) - set(MODEL_ARGUMENTS))
    if unknown:
        raise ValueError(
            f"network_inconsistency_test got arguments {unknown} that are "
            f"not model arguments it passes on; valid: "
            f"{list(MODEL_ARGUMENTS)} (the data come from the contrasts; "
            "options of fit go in fit_kwargs)")
    bscov = model_kwargs.get("bscov", "unstr")
    if not isinstance(bscov, str):
        raise ValueError(
            "bscov must name one Psi structure for the contrasts (say "
            f"'unstr' or 'prop'), got {bscov!r}")
    for name in ("psi_fix", "init_psi"):
        if isinstance(model_kwargs.get(name), (dict, list)):
            raise ValueError(
                f"{name} must be one matrix over the contrasts, not per "
                "level")
