"""
Tests of the fit as a whole, as methods of the results: heterogeneity
(Cochran's Q, I-squared and the table of ``heterogeneity()``;
:mod:`statsmodels_mixmeta.results.heterogeneity`,
:mod:`statsmodels_mixmeta.results.heterogeneity_measures`) and comparison
with nested fits (``compare_lr_test``, ``drop1``;
:mod:`statsmodels_mixmeta.results.comparison`).  A mixin of
:class:`~statsmodels_mixmeta.results.core.MixMetaResults`.
"""
import pandas as pd

try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly


class ModelTestMethods:
    """Heterogeneity of a fit and its likelihood-ratio comparisons."""


    def q_test(self):
        """
        Cochran's Q test of heterogeneity of the fixed-effects model.

        Returns
        -------
        QTestResult
            ``statistic``, ``df``, ``pvalue`` and ``names``: overall first,
            then per outcome when there are several.
        """
        return self._q_test

    @cache_readonly
    def _q_test(self):
        from . import heterogeneity
        model = self.model
        d = model.design
        model._singular_studies.require_positive_definite("Cochran's Q test")
        # the fixed-effects GLS (Psi = 0) on the model's own batches
        return heterogeneity.model_q_test(model._batches, d.basis,
                                          d.outcome_names, d.n_terms)

    @cache_readonly
    def i2(self):
        """I-squared of :meth:`q_test` as fractions, overall first."""
        from . import heterogeneity
        q = self._q_test
        return pd.Series(heterogeneity.i_squared(q), index=list(q.names),
                         name="I2")

    def heterogeneity(self):
        """
        Heterogeneity beyond Q in one table: Cochran's Q with H² and I²_H,
        the R² and I²_R of Jackson, White and Riley (2012), overall and per
        coefficient, and, for random intercepts with ``S`` per row, the
        share of variance at each level (level-specific I²) with the
        "typical" within-study variance, per outcome.

        Returns
        -------
        DataFrame
            Index ``(measure, scope)``, one column ``value``; shares are
            fractions.  The formulas are in
            :mod:`statsmodels_mixmeta.results.heterogeneity_measures`.
        """
        return self._heterogeneity.copy()

    @cache_readonly
    def _heterogeneity(self):
        from .heterogeneity_measures import heterogeneity_frame
        return heterogeneity_frame(self)

    def compare_lr_test(self, restricted):
        """
        Likelihood-ratio test of a fit nested in this one, as statsmodels'
        OLS ``compare_lr_test``: ``LR = 2 (llf - restricted.llf)`` on
        ``df_diff`` (the difference in ``df_loglike``) degrees of freedom.

        ML fits compare any nested pair of the same data; REML fits only
        with the same fixed-effects part; "mm"/"vc" fits have no
        likelihood.  For a variance tested at 0 the chi-square p-value is
        conservative.  See :mod:`statsmodels_mixmeta.results.comparison`.

        Returns
        -------
        lr_stat : float
        p_value : float
        df_diff : int

        Raises
        ------
        ValueError
            Saying why, when the fits are not comparable or the restricted
            one fits better (the full fit has not reached its maximum).
        """
        from .comparison import lr_test
        return lr_test(self, getattr(restricted, "_results", restricted))

    def drop1(self):
        """
        Likelihood-ratio test of dropping each fixed term, as R's
        ``drop1(fit, test="Chisq")``.

        A term's coefficients of every outcome go together; the intercept
        and terms contained in a higher-order term (marginality) are kept.
        Smaller models are refitted from the design without the term's
        columns, with the same Psi structure.  A REML fit is refitted by ML
        (full and smaller models), as lme4 does: REML likelihoods of
        different fixed parts do not compare; ``table.attrs["method"]``
        names the likelihood used.

        Returns
        -------
        DataFrame
            Indexed by ``"<none>"`` and the terms: ``df`` (coefficients
            dropped), ``aic`` (of the model without the term; the full
            model's for ``"<none>"``), ``lr`` and ``pvalue`` (chi2 on
            ``df``).
        """
        from .comparison import drop1
        return drop1(self)
