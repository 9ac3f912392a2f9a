"""
Tests and intervals on the fixed effects, as methods of the results
(``pvalues``, ``conf_int``, ``t_test``, ``wald_test``, ``f_test``,
``wald_test_terms``, ``t_test_pairwise``): statsmodels' own, routed through
the fit's covariance type and degrees-of-freedom rule
(:mod:`statsmodels_mixmeta.results.inference`).  A mixin of
:class:`~statsmodels_mixmeta.results.core.MixMetaResults`.
"""
import numpy as np
from scipy import stats

try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly

from .inference import constraint_arrays


class HypothesisMethods:
    """Hypothesis tests and intervals of the fixed effects."""

    @cache_readonly
    def df_inference(self):
        """Degrees of freedom of each coefficient's t test (an array, one
        per ``params``) with ``use_t``; None with normal references."""
        if self._df_rule is None:
            return None
        return self._df_rule.t_df(np.eye(len(self.params)))

    @cache_readonly
    def pvalues(self):
        """Two-sided p-values of ``tvalues``: normal, or t on
        ``df_inference`` with ``use_t``."""
        if self._df_rule is None:
            return 2 * stats.norm.sf(np.abs(self.tvalues))
        return 2 * stats.t.sf(np.abs(self.tvalues), self.df_inference)

    def conf_int(self, alpha=0.05, cols=None):
        """
        ``1 - alpha`` confidence intervals of ``params``: ``params -+ q se``
        with ``q`` the normal quantile, or with ``use_t`` the t quantile on
        each coefficient's ``df_inference``.
        """
        params, bse = np.asarray(self.params), np.asarray(self.bse)
        if self._df_rule is None:
            q = np.full(len(params), stats.norm.isf(alpha / 2))
        else:
            q = stats.t.isf(alpha / 2, self.df_inference)
        out = np.column_stack([params - q * bse, params + q * bse])
        return out if cols is None else out[np.asarray(cols)]

    def _contrast(self, r_matrix):
        """``(L, q)`` of a hypothesis as statsmodels' tests take it."""
        r_matrix = constraint_arrays(self, r_matrix)
        if isinstance(r_matrix, str):
            raise ValueError(f"cannot read the constraint {r_matrix!r}")
        if isinstance(r_matrix, tuple):
            L, q = r_matrix
        else:
            L, q = r_matrix, None
        L = np.atleast_2d(np.asarray(L, dtype=float))
        q = (np.zeros(L.shape[0]) if q is None
             else np.asarray(q, dtype=float).ravel())
        return L, q

    def t_test(self, r_matrix, cov_p=None, use_t=None):
        """
        statsmodels' ``t_test``; string constraints name ``params``
        (``"PD:year = AL:year"``) under either formula engine.  With
        ``use_t``, each contrast's t test is on its own degrees of freedom
        (the fit's ``df_method``).
        """
        r_matrix = constraint_arrays(self, r_matrix)
        out = super().t_test(r_matrix, cov_p=cov_p, use_t=use_t)
        use_t = self.use_t if use_t is None else use_t
        if not use_t or cov_p is not None or self._df_rule is None:
            return out
        L, _ = self._contrast(r_matrix)
        df = self._df_rule.t_df(L)
        if np.all(df == df[0]):  # one df, a number, as statsmodels'
            df = float(df[0])
        from statsmodels.stats.contrast import ContrastResults
        return ContrastResults(effect=out.effect, t=out.tvalue, sd=out.sd,
                               df_denom=df)

    def wald_test(self, r_matrix, cov_p=None, invcov=None, use_f=None,
                  df_constraints=None, scalar=None):
        """
        statsmodels' ``wald_test``; string constraints as in
        :meth:`t_test`.  The F form (``use_f``, by default ``use_t``) takes
        its statistic and degrees of freedom from the fit's ``df_method``.
        """
        r_matrix = constraint_arrays(self, r_matrix)
        use_f = self.use_t if use_f is None else use_f
        if (not use_f or self._df_rule is None or cov_p is not None
                or invcov is not None or df_constraints is not None):
            return super().wald_test(r_matrix, cov_p=cov_p, invcov=invcov,
                                     use_f=use_f,
                                     df_constraints=df_constraints,
                                     scalar=scalar)
        L, q = self._contrast(r_matrix)
        stat, df_num, df_denom = self._df_rule.f_test(
            L, q, np.asarray(self.params), self.cov_params())
        from statsmodels.stats.contrast import ContrastResults
        return ContrastResults(F=stat, df_num=df_num, df_denom=df_denom)

    def f_test(self, r_matrix, cov_p=None, invcov=None):
        """statsmodels' ``f_test`` (:meth:`wald_test` with the F form);
        string constraints as in :meth:`t_test`."""
        return self.wald_test(r_matrix, cov_p=cov_p, invcov=invcov,
                              use_f=True, scalar=True)

    def wald_test_terms(self, skip_single=False, extra_constraints=None,
                        combine_terms=None, scalar=True):
        """
        Wald test of each term, jointly over all outcomes.

        The test of a term covers its coefficients of every outcome (a
        factor's columns together): chi2 on ``k * columns`` degrees of
        freedom, or F with ``use_t``.  Terms are the formula's, or the
        columns of ``exog`` for a model built from arrays.  See
        :func:`statsmodels_mixmeta.results.terms.wald_test_terms` for the
        arguments (statsmodels' own).

        Returns
        -------
        statsmodels.stats.contrast.WaldTestResults
        """
        from .terms import wald_test_terms
        return wald_test_terms(self, skip_single, extra_constraints,
                               combine_terms, scalar)

    def t_test_pairwise(self, term_name, method="hs", alpha=0.05,
                        factor_labels=None, outcome=None):
        """
        Pairwise comparisons of the levels of a factor term, as
        statsmodels' ``t_test_pairwise``, within one outcome.

        Parameters
        ----------
        term_name : str
            A factor term of the formula, e.g. ``"C(g)"``.
        method, alpha, factor_labels
            statsmodels' (multiple-testing method, level, level labels).
        outcome : str, optional
            The outcome whose coefficients are compared; required with
            several outcomes (a pairwise comparison is within an outcome).

        Returns
        -------
        statsmodels.stats.contrast.MultiCompResult
        """
        from .terms import t_test_pairwise
        return t_test_pairwise(self, term_name, method, alpha,
                               factor_labels, outcome)
