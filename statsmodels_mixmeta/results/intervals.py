"""
The results of ``get_prediction``: predicted means at new rows, their
standard errors and covariances, confidence intervals of the means and
prediction intervals for the outcomes of a new study.

For new rows ``x_u`` (``n`` rows, ``p`` terms) and ``k`` outcomes the
coefficients are ordered outcome-major, so the design of row ``u`` is
``X_u = kron(I_k, x_u')`` (``k x kp``).  With ``V = cov(beta_hat)``:

* the predicted means are ``mu_u = X_u beta_hat``, with covariance
  ``X_u V X_u'`` (``k x k``; :meth:`PredictionResults.cov`), whose diagonal
  gives ``se_mean``;
* a new study at ``x_u`` has true effects ``X_u beta + b``, ``b`` its random
  effects, with covariance ``R_u = sum_l kron(I_k, z_ul') Psi_l
  kron(I_k, z_ul)`` (``z_ul`` the row's random predictors at level ``l``;
  ``z = 1`` for random intercepts).  The prediction interval adds ``R_u`` to
  the variance of the mean, ``var_obs = diag(X_u V X_u' + R_u)``: metafor's
  ``pi.lb``/``pi.ub`` of ``predict.rma`` (Riley, Higgins & Deeks, BMJ
  2011;342:d549, with normal rather than t quantiles).  In a multilevel model
  ``R_u`` sums the ``Psi`` of *every* level: the new study belongs to a new
  group at each level (a new study in a new district), as metafor's
  ``predict.rma.mv`` does when no level is given.  The within-study
  variance of the new study is not added: the interval is for its true
  effects.

Intervals are normal, or t on ``df`` degrees of freedom with ``use_t``
(the fit's df rule applied to the contrast of each predicted mean: one
number, ``df_resid``, for the ``"residual"`` rule; per row and outcome for
rules such as ``"kenward-roger"``).
"""
import numpy as np
import pandas as pd
from scipy import stats


class PredictionResults:
    """
    Predictions of the fixed part at new rows, with intervals.

    Parameters
    ----------
    predicted, se : DataFrame, (n, k)
        Predicted means and their standard errors, by row and outcome.
    alpha : float
        Default ``1 - alpha`` level of the intervals.
    df : float or ndarray ``(n, k)``, optional
        Degrees of freedom of t quantiles (``use_t``); normal when None.
    exog : ndarray, (n, p), optional
        The predictor rows (needed by :meth:`cov`).
    cov_beta : ndarray, (k p, k p), optional
        Covariance of the coefficients, outcome-major (needed by
        :meth:`cov`).
    random_cov : ndarray, (n, k, k), or callable, optional
        ``R_u``, the covariance of a new study's random effects at each row,
        summed over the levels (zeros when None), or a function computing it
        on first use.

    Attributes
    ----------
    predicted_mean, se_mean, var_pred_mean : ndarray
        As statsmodels' ``PredictionResults``: ``(n,)`` for one outcome,
        ``(n, k)`` for several.
    var_resid : ndarray
        The diagonal of ``R_u``: the between-study variance a new study adds.
    se_obs : ndarray
        ``sqrt(var_pred_mean + var_resid)``.
    """

    def __init__(self, predicted, se, alpha=0.05, df=None, exog=None,
                 cov_beta=None, random_cov=None):
        self.predicted = predicted
        self.se = se
        self.alpha = alpha
        self.df = df
        self.exog = exog
        self.cov_beta = cov_beta
        self._random_cov = random_cov
        self.dist = stats.norm if df is None else stats.t
        self.dist_args = () if df is None else (df,)

    @property
    def random_cov(self):
        """``R_u`` ``(n, k, k)``, computed on first use when it was given as
        a function (building it may need the random predictors of the new
        rows: the error saying how is raised here, not by the means)."""
        value = self._random_cov
        if value is None:
            n, k = self.predicted.shape
            value = np.zeros((n, k, k))
        elif callable(value):
            value = value()
        self._random_cov = value
        return value

    # ---------------------------------------------- statsmodels' attributes
    def _shaped(self, values):
        values = np.asarray(values)
        return values[:, 0] if values.shape[1] == 1 else values

    @property
    def predicted_mean(self):
        return self._shaped(self.predicted)

    @property
    def se_mean(self):
        return self._shaped(self.se)

    @property
    def var_pred_mean(self):
        return self._shaped(np.asarray(self.se) ** 2)

    @property
    def var_resid(self):
        return self._shaped(np.diagonal(self.random_cov, axis1=1, axis2=2))

    @property
    def se_obs(self):
        return np.sqrt(self.var_pred_mean + self.var_resid)

    # ------------------------------------------------------------ intervals
    def _quantile(self, alpha):
        alpha = self.alpha if alpha is None else alpha
        return self.dist.isf(alpha / 2, *self.dist_args)

    def conf_int(self, alpha=None, obs=False):
        """
        Lower and upper ``1 - alpha`` limits, each a DataFrame ``(n, k)``.

        ``obs=False`` gives the confidence interval of the mean,
        ``mu +- q se_mean``; ``obs=True`` the prediction interval of a new
        study's true effect, ``mu +- q sqrt(se_mean^2 + R_u,jj)`` (see the
        module docstring).  ``q`` is the normal quantile, or t on ``df``.
        """
        q = self._quantile(alpha)
        se = self.se
        if obs:
            extra = np.diagonal(self.random_cov, axis1=1, axis2=2)
            se = np.sqrt(se ** 2 + extra)
        return self.predicted - q * se, self.predicted + q * se

    def summary_frame(self, alpha=None):
        """
        One row per prediction: ``mean``, ``mean_se``, ``mean_ci_lower``,
        ``mean_ci_upper``, ``obs_ci_lower``, ``obs_ci_upper`` (the
        prediction interval of a new study); indexed by row, or by (row,
        outcome) when there are several outcomes.
        """
        lower, upper = self.conf_int(alpha)
        obs_lower, obs_upper = self.conf_int(alpha, obs=True)
        columns = {"mean": self.predicted, "mean_se": self.se,
                   "mean_ci_lower": lower, "mean_ci_upper": upper,
                   "obs_ci_lower": obs_lower, "obs_ci_upper": obs_upper}
        if self.predicted.shape[1] == 1:
            return pd.DataFrame({name: frame.iloc[:, 0]
                                 for name, frame in columns.items()})
        return pd.DataFrame({name: frame.stack(future_stack=True)
                             for name, frame in columns.items()})

    # ---------------------------------------------------------- covariances
    def cov(self, full=False, obs=False):
        """
        Covariance of the predicted outcomes.

        Parameters
        ----------
        full : bool
            False: the ``k x k`` covariance ``X_u V X_u'`` of each row's
            outcomes, an ``(n, k, k)`` array with ``X_u = kron(I_k, x_u')``.
            True: the ``(n k, n k)`` covariance of all predictions, ordered
            row-major (row 1's outcomes 1..k, then row 2's, ...), the order
            of :meth:`summary_frame`; rows of different new data are
            correlated through ``beta_hat``.
        obs : bool
            Add ``R_u``, the covariance of a new study's random effects, to
            each row's block: the covariance of the true effects of a new
            study at each row.  With ``full=True`` the new studies are
            independent (each in new groups), so ``R_u`` enters the
            diagonal blocks only.

        Returns
        -------
        ndarray, ``(n, k, k)`` or ``(n k, n k)``
        """
        if self.exog is None or self.cov_beta is None:
            raise ValueError("this PredictionResults was built without the "
                             "predictor rows and cov(beta); use "
                             "results.get_prediction(exog)")
        x = np.asarray(self.exog, dtype=float)
        n, p = x.shape
        k = self.predicted.shape[1]
        blocks = np.asarray(self.cov_beta).reshape(k, p, k, p)
        if not full:
            out = np.einsum("np,jpiq,nq->nji", x, blocks, x)
            return out + self.random_cov if obs else out
        out = np.einsum("np,jpiq,mq->njmi", x, blocks, x)
        if obs:
            out[np.arange(n), :, np.arange(n), :] += self.random_cov
        return out.reshape(n * k, n * k)
