"""
The MixMeta model: a statsmodels ``LikelihoodModel`` for meta-analysis with
known within-study covariances.

For outer groups ``i`` (in a standard meta-analysis, each study),

.. math::

    y_i = X_i \\beta + Z_i b_i + \\epsilon_i, \\qquad
    b_i \\sim N(0, \\Psi), \\qquad \\epsilon_i \\sim N(0, S_i),

with ``S_i`` known.  With ``k`` outcomes, ``X_i = x_i' \\otimes I_k`` (each
outcome has its own coefficients, ordered outcome-major).  Without
``random=`` every row is its own group and ``Z_i = I_k`` restricted to the
observed outcomes.  With ``random=`` (or ``groups``/``exog_re``) the rows are
nested in grouping levels, outer to inner, each with its own random
predictors and ``Psi_l``, and

.. math::

    \\Sigma_i = S_i + \\sum_l \\mathrm{blockdiag}_j (Z_{ijl} \\Psi_l Z_{ijl}'),

``j`` running over the level-``l`` groups inside outer group ``i``; ``S_i``
is block-diagonal over rows, or given whole per group (``addS``).  Each
``Psi_l`` has one of the structures of :mod:`statsmodels_mixmeta.structures.psi`
(:mod:`statsmodels_mixmeta.design.random_terms` parses ``random=`` and keeps the
levels' parameters together).

The data of a model are its :attr:`MixMeta.design`, built once by
:func:`statsmodels_mixmeta.design.builder.design_from_arrays` and never
changed; the constructor only wires it to the Psi structures and the kernel
(:meth:`MixMeta.from_design` wires an existing design, e.g. one from
``design.subset(groups)`` or ``design.with_endog(y)``).  A model is rebuilt
from its init keywords as statsmodels does,
``MixMeta(model.endog, model.exog, **model._get_init_kwds())``.

The model's parameters, as seen by statsmodels' optimisers, are the
structure parameters ``theta`` of the Psi's: ``loglike(theta)`` is the
(restricted) log-likelihood with the fixed effects profiled out by GLS
(:mod:`statsmodels_mixmeta.kernels.likelihood`).  The fitted results report the fixed
effects as ``params``, as R's mixmeta does.

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A. An extended mixed-effects
framework for meta-analysis. Statistics in Medicine 2019; 38: 5429-5444.
"""
import numpy as np
import pandas as pd
from statsmodels.base.model import LikelihoodModel

from . import structures as _structures
from .design import builder as _builder
from .design import core as _design
from .design import singular as _singular
from .fitting import estimator_checks as _checks
from .fitting import schedule as _schedule
from .fitting.objective import psi_on_boundary
from .fitting import restarts as _restarts
from .kernels import moments as estimators
from .model_data import ModelData
from .model_likelihood import ModelLikelihood
from .results import MixMetaResults, MixMetaResultsWrapper
from .results import inference as _inference

METHODS = _checks.METHODS
# what MixMeta(model.endog, model.exog, **model._get_init_kwds()) needs
INIT_KEYS = ("S", "Scor", "method", "bscov", "psi_fix", "init_psi",
             "missing", "vc_adjust", "groups", "exog_re", "addS",
             "formula_terms", "random_terms")


class MixMeta(ModelData, ModelLikelihood, LikelihoodModel):
    """
    Mixed-effects meta-analysis and meta-regression with known within-study
    (co)variances.

    Parameters
    ----------
    endog : array_like
        Outcomes, ``(n,)`` or ``(n, k)``; NaN marks a missing outcome.
    exog : array_like, optional
        Study-level predictors ``(n, p)``, including the intercept column.
        ``None`` means an intercept only.
    S : array_like
        Known within-study (co)variances: ``(n,)`` variances (``k = 1``);
        ``(n, k)`` variances with correlations from ``Scor``;
        ``(n, k(k+1)/2)`` lower triangles taken by column (for ``k = 2``:
        var1, cov12, var2); or ``(n, k, k)`` matrices.  With
        :meth:`from_formula`, a column name or list of column names.
    method : {"reml", "ml", "fixed", "mm", "vc"}
        Estimator: restricted or full maximum likelihood, fixed effects,
        multivariate method of moments (Jackson, White & Riley 2013) or
        variance components.  "mm" and "vc" need a single grouping level
        whose values each carry their own random effect: every row its
        own group (R's only case), with ``S`` or ``addS``, or groups of
        rows reporting different outcomes, e.g. a long format with
        ``random="~ 0 + C(outcome) | study"`` (an addition to R; see
        :mod:`statsmodels_mixmeta.kernels.moments`).
    bscov : str, list or dict
        Structure of ``Psi``: "unstr", "diag", "id", "cs", "hcs", "ar1",
        "har1", "prop", "cor" or "fixed"; one for all grouping levels, a
        list in level order, or a dict keyed by level.
    psi_fix : array_like, list or dict, optional
        The known matrix of the "prop", "cor" and "fixed" structures (per
        level as ``bscov``).
    init_psi : array_like, list or dict, optional
        Starting value of ``Psi`` for ML/REML, a symmetric positive
        semi-definite matrix per level as ``bscov`` (default ``0.001 I``
        times the typical within-study variance, over the mean squared
        random predictor: R's ``0.001 I`` made relative to the scale of the
        data).
    Scor : float or array_like, optional
        Within-study correlations when ``S`` gives variances only: a scalar,
        ``k(k-1)/2`` values, or one row per study.
    missing : {"drop", "raise", "none"}
        Rows with a missing predictor, or with all outcomes missing, are
        dropped (default), or raise an error.  Rows with some outcomes
        missing are always kept.  NaN (or ``pd.NA``) marks a missing
        value; an infinite value is an error naming its rows and column.
    vc_adjust : bool
        For ``method="vc"``, standardise residuals by their leverage.
    groups : array_like or DataFrame, optional
        Grouping labels ``(n,)`` or ``(n, L)``, outer level first; the
        columns of a DataFrame name the levels.  Inner groups are defined
        within outer groups.  Without it every row is its own group.
    exog_re : array_like or list, optional
        Random predictors: one ``(n, q)`` array for all levels, or one per
        level; the default is a random intercept at each level.
    addS : dict or list, optional
        Known within-group covariance, one full matrix per outer group
        (keyed by group label, or in sorted label order) covering the
        group's observed values in row order; used instead of ``S``.
    **kwargs
        Passed to statsmodels' ``Model`` (``formula``, ``model_spec``, ...);
        :meth:`from_formula` also passes the parsed ``random_terms`` and
        the fitted right-hand side, ``formula_terms``, which the design
        keeps.

    Attributes
    ----------
    design : Design
        The validated data, frozen (:mod:`statsmodels_mixmeta.design.frozen`).
    random : RandomPart
        The Psi structure of every grouping level.

    Notes
    -----
    Inputs are checked before anything is built on them
    (:mod:`statsmodels_mixmeta.design.validation`): pandas ``exog``, ``S``,
    ``Scor``, ``groups`` and ``exog_re`` are matched to the rows of a
    pandas ``endog`` by index label; nullable and object columns of
    numbers are converted to float and text is refused; infinite values
    are refused naming rows and columns.  A singular ``S`` (a zero or tiny
    variance) is refused by "fixed", "mm" and "vc", and by an ML/REML fit
    whose Psi leaves that study's marginal covariance singular.
    """

    _formula_max_endog = None
    def __init__(self, endog, exog=None, S=None, method="reml",
                 bscov="unstr", psi_fix=None, init_psi=None, Scor=None,
                 missing="drop", vc_adjust=True, groups=None, exog_re=None,
                 addS=None, **kwargs):
        unknown = sorted(set(kwargs) - set(self._kwargs_allowed)
                         - {"random_terms", "formula_terms"})
        if unknown:
            raise TypeError(
                f"MixMeta got unexpected keyword arguments {unknown}; see "
                "help(MixMeta) for the valid ones")
        method, bscov = _checks.check_method(method, bscov)
        design, endog, exog = _builder.design_from_arrays(
            endog, exog, S=S, Scor=Scor, missing=missing, groups=groups,
            exog_re=exog_re, addS=addS,
            fixed_spec=kwargs.pop("formula_terms", None)
            or kwargs.get("model_spec"),
            random_terms=kwargs.pop("random_terms", None),
            formula=kwargs.get("formula"))
        # the constant is found from X'X, not by another scan of X
        kwargs.setdefault("hasconst", False)
        super().__init__(endog, exog, missing="none", **kwargs)
        self.formula = kwargs.get("formula")
        self.missing = missing
        self._wire(design, method, bscov, psi_fix, init_psi, vc_adjust)

    @classmethod
    def from_design(cls, design, method="reml", bscov="unstr", psi_fix=None,
                    init_psi=None, vc_adjust=True):
        """
        A model of an existing :class:`~statsmodels_mixmeta.design.frozen.Design`.

        Nothing is parsed or validated again: for the designs of
        ``model.design.subset(groups)`` (leave-one-out, cross-validation)
        and ``model.design.with_endog(y)`` (simulation, bootstrap), a model
        costs a small fraction of building one from the data, and fits
        exactly as one built from the data would.

        Parameters
        ----------
        design : Design
            Typically ``model.design``, or one derived from it.
        method, bscov, psi_fix, init_psi, vc_adjust
            As for :class:`MixMeta`.

        Returns
        -------
        MixMeta
        """
        method, bscov = _checks.check_method(method, bscov)
        endog, exog = design.endog, design.exog
        if design.n_outcomes == 1:
            endog = endog[:, 0]
        if design.labelled:
            index = design.row_labels
            endog = (pd.Series(endog, index=index,
                               name=design.outcome_names[0])
                     if endog.ndim == 1 else
                     pd.DataFrame(endog, index=index,
                                  columns=list(design.outcome_names)))
            exog = pd.DataFrame(exog, index=index,
                                columns=list(design.term_names))
        model = cls.__new__(cls)
        # the formula's spec stays on the design (statsmodels' data would
        # need the formula and frame to unpickle it)
        LikelihoodModel.__init__(model, endog, exog, missing="none",
                                 hasconst=False)
        model.formula = None
        model.missing = "none"
        model._wire(design, method, bscov, psi_fix, init_psi, vc_adjust)
        return model

    def _wire(self, design, method, bscov, psi_fix, init_psi, vc_adjust):
        """Attach the design and choose the random part and kernel."""
        self.design = design
        self.method = method
        self.bscov = bscov
        self.psi_fix = psi_fix
        self.init_psi = init_psi
        self.vc_adjust = vc_adjust
        self.data.param_names = design.param_names
        # statsmodels' constant: per outcome (each has its own intercept)
        self.k_constant, self.data.const_idx = _design.constant_term(
            design.exog)
        self.data.k_constant = self.k_constant
        _checks.check_estimable(design, method)
        n_values, n_coef = design.n_values, design.n_coef
        levels = design.levels
        level_names = list(levels.names)
        self.random = _structures.random_part(
            [] if method == "fixed" else level_names, bscov, psi_fix,
            design.n_outcomes, [list(e) for e in levels.effect_names])
        self.psi_structure = (self.random.structures[0]
                              if self.random.n_levels == 1 else None)
        self._start_psis = self.random.check_init_psi(
            _structures.per_level(init_psi, level_names, "init_psi"))
        self.nobs = float(n_values)
        self.k_fe = n_coef
        self.k_psi = self.random.n_params
        self._singular_studies = _singular.SingularStudies(
            design, design.group_cov, design.levels.outer_labels)
        self._singular_studies.check_weights(method)
        if method in ("mm", "vc"):
            self._check_moment_layout()
        # rebuildable as MixMeta(model.endog, model.exog,
        # **model._get_init_kwds()); the constant is always found from X'X
        self._init_keys = [key for key in self._init_keys
                           if key != "hasconst"] + [
            key for key in INIT_KEYS if key not in self._init_keys]

    def _check_moment_layout(self):
        """The layout of values the moment estimators need (see
        :mod:`statsmodels_mixmeta.fitting.estimator_checks`)."""
        _checks.check_moment_layout(
            self._kernel_long(), lambda: self._batches, self.method,
            self.vc_adjust, self.n_outcomes, self.random.effect_names[0])

    def fit(self, start_params=None, method="newton", maxiter=100,
            scoring_iter=50, igls_iter=10, disp=False, full_output=True,
            cov_type="nonrobust", cov_kwds=None, use_t=False,
            df_method=None, **kwargs):
        """
        Fit the model.

        ML and REML follow the schedule of
        :mod:`statsmodels_mixmeta.fitting.schedule`: a start from ``init_psi``
        (default ``0.001 I`` in the data's variance unit) with up to
        ``igls_iter`` Fisher-scoring steps on the free entries of Psi, each
        projected onto the positive semi-definite matrices (the analogue of
        R's IGLS start); up to ``scoring_iter`` damped, modified Newton
        steps on the structure parameters (Newton's method in the variance
        itself for a single variance); then statsmodels' optimiser
        machinery (``LikelihoodModel.fit``) finishes and certifies the
        optimum.  The default finisher is Newton's method with the analytic
        Hessian; should it end anywhere but at a maximum at least as high
        as its start, BFGS takes over from there.  Tolerances are relative
        to the scale of the data.  A Psi on the boundary of its parameter
        space is reported (``on_boundary``, and a note in ``summary()``).
        A converged ML/REML fit is then checked for a higher maximum
        elsewhere (:mod:`statsmodels_mixmeta.fitting.restarts`): a single
        variance by a scan that certifies the global maximum over
        ``tau2 >= 0``, otherwise by a second start (method of moments, or
        scaled to the residuals) when Psi ends on its boundary or the start
        was the default; ``mle_retvals["start"]`` names the start that won
        and ``summary()`` notes two distinct optima.  Fixed effects, method
        of moments and variance components are computed directly.

        Parameters
        ----------
        start_params : array_like, optional
            Starting structure parameters (overrides ``init_psi``), one per
            name in ``model.random.param_names()``.
        method : str
            Optimiser passed to ``LikelihoodModel.fit`` ("newton", "bfgs",
            "lbfgs", "nm", ...; any case).  The estimator (ML, REML, ...) is
            chosen on the model, not here.
        maxiter : int
            Maximum iterations of that optimiser.
        scoring_iter : int
            Maximum damped Newton steps before it.
        igls_iter : int
            Maximum iterations of the start on the free entries of Psi.
        cov_type : str
            Covariance of the fixed effects, a name in
            :data:`statsmodels_mixmeta.results.inference.COV_TYPES` (see
            :class:`MixMetaResults`).
        cov_kwds : dict, optional
            Options of ``cov_type``.
        use_t : bool
            t and F reference distributions instead of normal and chi2.
        df_method : str, optional
            Degrees of freedom of those t and F tests, a name in
            :data:`statsmodels_mixmeta.results.inference.DF_METHODS`:
            "residual" (``df_resid``), "containment" (metafor's
            ``dfs="contain"``), "satterthwaite" (ML or REML) or
            "kenward-roger" (REML only; also adjusts the covariance of the
            fixed effects); see :mod:`~statsmodels_mixmeta.results.df_methods`
            and :mod:`~statsmodels_mixmeta.results.kenward_roger`.  The
            default is the cov type's own rule (``df_resid`` for
            "nonrobust").  Needs ``use_t=True``.
        disp, full_output, **kwargs
            Passed to ``LikelihoodModel.fit`` (e.g. ``tol`` for Newton,
            ``gtol`` for BFGS).

        Returns
        -------
        MixMetaResults
        """
        method = _schedule.check_optimizer_name(method)
        # checked before fitting; kept for the results
        inference = _inference.check_inference(
            self, cov_type, cov_kwds, use_t, df_method)
        if self.method == "fixed":
            return self._results((), (), None, True, {}, **inference)
        if self.method in ("mm", "vc"):
            psi, info = self._moment_estimate()
            info["on_boundary"] = psi_on_boundary(
                (psi,), self._psi_units(), self.random.structures)
            return self._results((psi,), np.array([]), None,
                                 info.get("converged", True), info,
                                 **inference)
        outcome = _schedule.fit(
            self.objective, start_params=start_params,
            init_psi=self._start_psis, optimizer=self._statsmodels_fit,
            method=method, maxiter=maxiter, scoring_iter=scoring_iter,
            igls_iter=igls_iter, disp=disp, full_output=full_output,
            optimizer_kwargs=kwargs, restart=self._restart, stacklevel=2)
        theta = outcome.theta
        psis = self.psis(theta)
        self._singular_studies.check_marginal(psis, self.level_names)
        return self._results(psis, theta, self.objective.state(theta),
                             outcome.converged, outcome.retvals, **inference)

    def _restart(self, objective, theta, retvals, refit):
        """The schedule's restart step (``schedule.fit``'s ``restart``):
        :func:`statsmodels_mixmeta.fitting.restarts.model_restart` on this
        model's design and batches."""
        return _restarts.model_restart(
            objective, theta, retvals, refit, self.design,
            lambda: self._batches, self.__dict__.setdefault("_scan_cache",
                                                            {}))

    def _statsmodels_fit(self, theta, method, maxiter, disp, full_output,
                         kwargs):
        """statsmodels' optimiser machinery (``LikelihoodModel.fit``, which
        calls :meth:`loglike`, :meth:`score` and :meth:`hessian`) from
        ``theta``: the schedule's hand-over."""
        mlefit = super().fit(start_params=theta, method=method,
                             maxiter=maxiter, disp=disp,
                             full_output=full_output, skip_hessian=True,
                             **kwargs)
        return (np.asarray(mlefit.params, dtype=float),
                dict(mlefit.mle_retvals or {}))

    def _moment_estimate(self):
        names = self.random.effect_names[0]
        if self.method == "mm":
            return estimators.method_of_moments_psi(
                self._batches, self.design.basis, names,
                min_rcond=estimators.MOMENT_RCOND), {}
        psi, n_iter, converged = estimators.variance_components_psi(
            self._batches, self.design.basis, adjust=self.vc_adjust,
            n_terms=self.design.n_terms, names=names)
        return psi, {"iterations": n_iter, "converged": converged}

    def _results(self, psis, theta, state, converged, retvals,
                 **inference):
        if state is None:
            state = self.profiled_likelihood(reml=False).evaluate(psis)
        res = MixMetaResults(self, state, theta, converged, retvals,
                             **inference)
        return MixMetaResultsWrapper(res)

    def predict(self, params, exog=None):
        """Linear predictor ``(n, k)`` of ``exog`` at fixed effects params."""
        exog = self.design.exog if exog is None else np.asarray(exog, float)
        k, p = self.n_outcomes, self.design.n_terms
        return exog @ np.asarray(params).reshape(k, p).T
