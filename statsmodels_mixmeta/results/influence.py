r"""
Outlier and influence diagnostics per outer group, from leave-one-out
refits (:mod:`statsmodels_mixmeta.results.leave_one_out`).

For a univariate model with one value per group (``y_i``, ``x_i``, within
variance ``v_i``, between variance ``tau2``) the statistics are those that
metafor's ``influence.rma.uni`` documents (Viechtbauer & Cheung 2010),
implemented here from their definitions.  With ``b``, ``V = (X' W X)^-1``
and ``W = diag(1 / (v_i + tau2))`` from the full fit and ``b_(-i)``,
``V_(-i)``, ``tau2_(-i)`` from the fit without study ``i`` (``V`` the
model-based covariance, whatever ``cov_type`` the fit reports):

* externally studentised residual
  ``(y_i - x_i' b_(-i)) / sqrt(v_i + tau2_(-i) + x_i' V_(-i) x_i)``;
* DFFITS ``(x_i' b - x_i' b_(-i)) / sqrt(h_i (tau2_(-i) + v_i))``;
* Cook's distance ``(b - b_(-i))' V^-1 (b - b_(-i))``;
* covariance ratio ``det V_(-i) / det V``;
* DFBETAS ``(b - b_(-i)) / sqrt(diag V_(-i))``;
* hat value ``h_i``, the diagonal of ``X V X' W``;
* the deleted ``tau2_(-i)`` and the deleted Q, the heterogeneity statistic of
  the studies left.

Groups of several values (several outcomes, or a multilevel model, whose
outer group holds many values), with ``y_i``, ``X_i`` the group's observed
values and design, ``Sigma_i`` its marginal covariance at the full fit and
``Sigma_i^(-i) = S_i + Z_i Psi_(-i) Z_i'`` at the deleted Psi's:

* ``student_chi2`` is the Mahalanobis statistic of the group's deleted
  residual ``d_i = y_i - X_i b_(-i)`` with its covariance,
  ``X2_i = d_i' (Sigma_i^(-i) + X_i V_(-i) X_i')^-1 d_i``, chi-squared on
  ``n_values`` (the group's values) degrees of freedom when the group is
  no outlier (metafor's ``rstudent.rma.mv(cluster=)`` statistic), and
  ``student_resid`` its square root (the univariate ``|residual|``);
* ``hat_diag`` is the trace of the group's block of the hat matrix,
  ``tr(X_i V X_i' Sigma_i^-1)`` (the leverage of the group, summing to the
  number of coefficients over the groups);
* ``dffits`` is ``sqrt(D_i' (Sigma_i^(-i))^-1 D_i / h_i)`` with
  ``D_i = X_i (b - b_(-i))``, the change of the group's fitted values in
  units of their deleted marginal covariance per unit of leverage;
* Cook's distance, the covariance ratio and DFBETAS are defined on the
  coefficients and apply unchanged.

A group of one value keeps the univariate signs of ``student_resid`` and
``dffits``; so these columns equal metafor's for one value per group.
The deleted Psi's are columns ``tau2_del`` (a single variance) or
``psi_del:<a>,<b>`` (``psi_del[<level>]:<a>,<b>`` with several levels),
the deleted Q ``q_del``.

References
----------
Viechtbauer W, Cheung MW-L. Outlier and influence diagnostics for
meta-analysis. Research Synthesis Methods 2010; 1: 112-125.
Belsley DA, Kuh E, Welsch RE. Regression Diagnostics. Wiley, 1980.
"""
import numpy as np
import pandas as pd

try:  # statsmodels >= 0.15
    from statsmodels.tools._decorators import cache_readonly
except ImportError:  # pragma: no cover
    from statsmodels.tools.decorators import cache_readonly

from ..kernels.likelihood import marginal_cov
from .simulation import _psi_names


class MixMetaInfluence:
    """
    Influence diagnostics of a MixMeta fit, one entry per outer group
    (statsmodels' ``OLSInfluence``/``MLEInfluence`` names; the formulas are
    in the module docstring).

    Attributes
    ----------
    resid_studentized_external : Series
        ``student_resid``.
    dffits, cooks_distance, cov_ratio, hat_matrix_diag : Series
    dfbetas : DataFrame
        ``(b - b_(-i)) / sqrt(diag V_(-i))``, one column per coefficient.
    d_params : DataFrame
        ``b - b_(-i)`` (statsmodels' ``dfbeta``).
    params_not_obsi : DataFrame
        ``b_(-i)``.
    psi_del : DataFrame
        The deleted Psi entries.
    q_del : Series
        The deleted Cochran's Q (overall).
    leave_one_out : DataFrame
        The refits (``MixMetaResults.leave_one_out()``).
    """

    def __init__(self, results):
        self.results = getattr(results, "_results", results)
        self._refits = self.results._leave_one_out
        self.index = self._refits.labels
        self.param_names = list(self.results.model.data.param_names)

    # ---------------------------------------------------- coefficients
    @cache_readonly
    def _diff(self):
        return np.asarray(self.results.params, float) - self._refits.beta

    @cache_readonly
    def params_not_obsi(self):
        return self._frame(self._refits.beta)

    @cache_readonly
    def d_params(self):
        return self._frame(self._diff)

    @cache_readonly
    def dfbetas(self):
        se = np.sqrt(np.einsum("gjj->gj", self._refits.cov_beta))
        return self._frame(self._diff / se)

    @cache_readonly
    def cooks_distance(self):
        cov = np.asarray(self.results.normalized_cov_params, float)
        solved = np.linalg.solve(cov, self._diff.T).T
        return self._series(np.einsum("gj,gj->g", self._diff, solved),
                            "cooks_d")

    @cache_readonly
    def cov_ratio(self):
        cov = np.asarray(self.results.normalized_cov_params, float)
        logdet_del = np.linalg.slogdet(self._refits.cov_beta)[1]
        return self._series(np.exp(logdet_del - np.linalg.slogdet(cov)[1]),
                            "cov_ratio")

    # ------------------------------------------------- group statistics
    @cache_readonly
    def _group_stats(self):
        return group_statistics(self.results, self._refits)

    @cache_readonly
    def hat_matrix_diag(self):
        return self._series(self._group_stats["hat"], "hat_diag")

    @cache_readonly
    def student_chi2(self):
        return self._series(self._group_stats["chi2"], "student_chi2")

    @cache_readonly
    def n_values(self):
        return self._series(self._group_stats["n_values"], "n_values")

    @cache_readonly
    def resid_studentized_external(self):
        return self._series(self._group_stats["student"], "student_resid")

    @cache_readonly
    def dffits(self):
        return self._series(self._group_stats["dffits"], "dffits")

    # ------------------------------------------------------ deleted fits
    @cache_readonly
    def psi_del(self):
        random = self.results.model.random
        names = _deleted_psi_names(random) if self.results.psis else []
        columns = []
        for stack in self._refits.psis:
            rows, cols = np.tril_indices(stack.shape[-1])
            columns += [stack[:, a, b] for a, b in zip(rows, cols)]
        values = np.column_stack(columns) if columns else \
            np.empty((len(self.index), 0))
        return pd.DataFrame(values, index=self.index.copy(), columns=names)

    @cache_readonly
    def q_del(self):
        return self._series(self._refits.q_statistic[:, 0], "q_del")

    @property
    def leave_one_out(self):
        return self.results.leave_one_out()

    def summary_frame(self):
        """
        The diagnostics in one frame, one row per outer group:
        ``student_resid``, ``dffits``, ``cooks_d``, ``cov_ratio``,
        ``hat_diag``, ``dfb_<param>``, the deleted Psi (``tau2_del`` or
        ``psi_del...``) and ``q_del``; with groups of several values also
        ``student_chi2`` and ``n_values``.
        """
        parts = [self.resid_studentized_external, self.dffits,
                 self.cooks_distance, self.cov_ratio, self.hat_matrix_diag,
                 self.dfbetas.add_prefix("dfb_"), self.psi_del, self.q_del]
        if np.any(self._group_stats["n_values"] > 1):
            parts += [self.student_chi2, self.n_values]
        return pd.concat(parts, axis=1)

    # ------------------------------------------------------------------
    def _frame(self, values):
        return pd.DataFrame(values, index=self.index.copy(),
                            columns=self.param_names)

    def _series(self, values, name):
        return pd.Series(values, index=self.index.copy(), name=name)


def group_statistics(results, refits):
    """
    Per outer group: the hat trace, the deleted-residual statistic and its
    signed root, DFFITS and the number of values (the module docstring's
    formulas), batch by batch over the model's stacked groups.

    Returns
    -------
    dict of ndarray, each ``(m,)`` in the order of ``refits.labels``
    """
    model = results.model
    beta = np.asarray(results.params, float)
    cov = np.asarray(results.normalized_cov_params, float)
    m = len(refits.labels)
    out = {name: np.full(m, np.nan) for name in
           ("hat", "chi2", "student", "dffits", "n_values")}
    for batch in model._batches:
        g = batch.groups
        X, y = batch.X, batch.y                      # (g, n, P), (g, n)
        sigma = marginal_cov(batch, tuple(results.psis))
        fitted_cov = X @ cov @ np.swapaxes(X, 1, 2)  # X V X'
        hat = np.einsum("gnm,gmn->g", fitted_cov, np.linalg.inv(sigma))
        sigma_del = _deleted_marginal_cov(batch, [p[g] for p in
                                                  refits.psis])
        beta_del = refits.beta[g]
        resid = y - np.einsum("gnj,gj->gn", X, beta_del)
        resid_cov = sigma_del + X @ refits.cov_beta[g] @ np.swapaxes(X, 1, 2)
        chi2 = np.einsum("gn,gn->g", resid,
                         np.linalg.solve(resid_cov, resid[..., None])[..., 0])
        change = np.einsum("gnj,gj->gn", X, beta - beta_del)
        dffits2 = np.einsum(
            "gn,gn->g", change,
            np.linalg.solve(sigma_del, change[..., None])[..., 0]) / hat
        n_values = batch.valid.sum(axis=1)
        # one value: the signs of the univariate statistics
        single = n_values == 1
        sign_resid = np.where(single, np.sign(resid[:, 0]), 1.0)
        sign_change = np.where(single, np.sign(change[:, 0]), 1.0)
        out["hat"][g] = hat
        out["chi2"][g] = chi2
        out["student"][g] = sign_resid * np.sqrt(chi2)
        out["dffits"][g] = sign_change * np.sqrt(dffits2)
        out["n_values"][g] = n_values
    return out


def _deleted_marginal_cov(batch, psi_stacks):
    """
    ``S_i + sum_l Z~_il (I (x) Psi_l,(-i)) Z~_il'`` with a Psi of its own
    per group (``psi_stacks``: per level ``(g, r, r)``): the marginal
    covariance is linear in each Psi, so it is built from its value at the
    unit matrices ``E_ab`` of every entry.
    """
    sigma = batch.S.copy()
    zeros = [np.zeros(stack.shape[1:]) for stack in psi_stacks]
    for level, stack in enumerate(psi_stacks):
        r = stack.shape[-1]
        for a in range(r):
            for b in range(r):
                units = list(zeros)
                units[level] = np.zeros((r, r))
                units[level][a, b] = 1.0
                part = marginal_cov(batch, units) - batch.S
                sigma += stack[:, a, b][:, None, None] * part
    return sigma


def _deleted_psi_names(random):
    """``tau2_del`` for a single variance, else ``psi_del`` and the
    Psi entry's name (see :func:`~.simulation._psi_names`)."""
    if random.n_levels == 1 and len(random.effect_names[0]) == 1:
        return ["tau2_del"]
    return ["psi_del" + name[3:] for name in _psi_names(random)]
