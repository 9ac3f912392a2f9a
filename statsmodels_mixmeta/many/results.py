"""
The results of :func:`statsmodels_mixmeta.fit_many`: arrays with one row per
problem, a DataFrame view, and a full single-model fit of any one problem on
request.

The shapes are laid out for the planned multivariate form as well: with
``k`` outcomes, ``params`` and ``bse`` become ``(n_problems, k p)`` and
``psi`` ``(n_problems, k, k)`` (``tau2`` staying the univariate name).
"""
import enum

import numpy as np
import pandas as pd


class Status(enum.IntEnum):
    """Why a problem was or was not fitted (``ManyResults.status``)."""

    FITTED = 0
    EMPTY = 1            # no observed study
    TOO_FEW = 2          # fewer observed studies than coefficients (+1)
    RANK_DEFICIENT = 3   # the design on its observed studies
    UNCERTIFIED = 4      # fitted, but the maximum is not certified
    UNPAIRED = 5         # "mm": two outcomes never observed together
    SINGULAR_MOMENTS = 6  # "mm": the moment equations are singular


MESSAGES = {
    Status.FITTED: "fitted",
    Status.EMPTY: "no observed study",
    Status.TOO_FEW: "fewer observed studies than coefficients (plus one for "
                    "the variance, except method='fixed')",
    Status.RANK_DEFICIENT: "the design is rank-deficient on the observed "
                           "studies",
    Status.UNCERTIFIED: "fitted, but not certified as the maximum a single "
                        "fit finds (a climb did not converge, the Hessian "
                        "is singular there, or a second start found "
                        "another maximum): check it with .problem(j)",
    Status.UNPAIRED: "two outcomes are never observed in the same study: "
                     "their covariance has no moment estimate",
    Status.SINGULAR_MOMENTS: "the moment equations for Psi are singular "
                             "(too few observed values, or a pattern of "
                             "missing outcomes that leaves them so)",
}


class ManyResults:
    """
    Fits of many independent univariate problems.

    Attributes
    ----------
    method : str
    params, bse : ndarray, ``(n_problems, p)``
        Coefficients and their standard errors (NaN where not fitted).
    tau2 : ndarray, ``(n_problems,)``
        Between-study variance; ``psi`` is the same array.
    llf : ndarray
        (Restricted) log-likelihood as the single fit reports it (NaN for
        ``"mm"``).
    converged : ndarray of bool
    n_iter : ndarray of int
        Newton iterations (0 for ``"fixed"`` and ``"mm"``).
    gap : ndarray
        ML/REML: no ``tau2 >= 0`` has a likelihood above ``llf + gap``
        (certified by the bounds of
        :func:`statsmodels_mixmeta.fitting.many.certify`; NaN where not
        certified).
    q, q_df, i2 : ndarray
        Cochran's Q of the fixed-effects fit (with several outcomes the
        multivariate ``sum_i r_i' S_i^{-1} r_i``), its degrees of freedom
        ``n_obs - p`` (observed values less coefficients) and I²
        ``max(0, (Q - df) / Q)`` as a fraction.
    n_obs : ndarray of int
        Observed values of each problem (studies, with one outcome).
    status : ndarray of int8
        :class:`Status` codes; ``messages`` says why a problem was not
        fitted.
    groups : array_like or DataFrame or None
        With ``fit_many(..., groups=G)`` (one two-level design refitted to
        many data sets), ``G``; ``psi`` is then ``(n_problems, n_levels,
        k, k)``, outermost level first, and :meth:`problem` refits with
        ``groups=G``.
    """

    #: The engine that fitted the problems ("numpy" or "numba").
    engine = "numpy"

    def __init__(self, method, endog, S, exog, params, bse, tau2, llf, q,
                 gap, converged, n_iter, n_obs, status, psi=None,
                 bscov="unstr", groups=None):
        self.method, self.bscov, self.groups = method, bscov, groups
        self._psi = psi
        self._endog, self._S, self._exog = endog, S, exog
        self.params, self.bse, self.tau2, self.llf = params, bse, tau2, llf
        self.q, self.gap = q, gap
        self.converged, self.n_iter = converged, n_iter
        self.n_obs, self.status = n_obs, status

    @property
    def n_problems(self):
        return self.params.shape[0]

    def __len__(self):
        return self.n_problems

    @property
    def k(self):
        """Outcomes per study."""
        return 1 if self._psi is None else self._psi.shape[-1]

    @property
    def psi(self):
        """Between-study (co)variance of each problem: ``tau2``, or
        ``(n_problems, k, k)`` with several outcomes, or ``(n_problems,
        n_levels, k, k)`` (outermost level first) with ``groups``."""
        return self.tau2 if self._psi is None else self._psi

    @property
    def q_df(self):
        return np.where(self.fitted, self.n_obs - self.params.shape[1], -1)

    @property
    def i2(self):
        q, df = self.q, self.q_df
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(q > 0, np.maximum(0.0, (q - df) / q), 0.0) * \
                np.where(np.isnan(q), np.nan, 1.0)

    @property
    def fitted(self):
        """Whether each problem was fitted (certified or not)."""
        return (self.status == Status.FITTED) | (
            self.status == Status.UNCERTIFIED)

    @property
    def messages(self):
        """Why each problem that was not fitted was not: a Series indexed by
        problem."""
        rows = np.flatnonzero(self.status != Status.FITTED)
        return pd.Series([MESSAGES[Status(s)] for s in self.status[rows]],
                         index=pd.Index(rows, name="problem"),
                         name="status", dtype=object)

    def to_frame(self):
        """One row per problem: coefficients, standard errors, ``tau2``,
        ``llf``, Q, I², ``n_obs``, convergence and status."""
        p = self.params.shape[1]
        names = [f"x{a}" if a else "const" for a in range(p)]
        frame = pd.DataFrame(self.params, columns=names)
        for a, name in enumerate(names):
            frame[f"se:{name}"] = self.bse[:, a]
        if self._psi is None:
            frame["tau2"] = self.tau2
        elif self._psi.ndim == 4:
            for level in range(self._psi.shape[1]):
                for a in range(self.k):
                    for b in range(a + 1):
                        frame[f"psi[{level}][{a},{b}]"] = \
                            self._psi[:, level, a, b]
        else:
            for a in range(self.k):
                for b in range(a + 1):
                    frame[f"psi[{a},{b}]"] = self._psi[:, a, b]
        frame["llf"] = self.llf
        frame["q"] = self.q
        frame["i2"] = self.i2
        frame["n_obs"] = self.n_obs
        frame["converged"] = self.converged
        frame["n_iter"] = self.n_iter
        frame["status"] = [MESSAGES[Status(s)] for s in self.status]
        frame.index.name = "problem"
        return frame

    def problem_data(self, j):
        """``(endog, exog, S)`` of problem ``j``'s observed studies."""
        j = self._index(j)
        if self.groups is not None:
            return (np.asarray(self._endog[:, :, j]), np.asarray(self._exog),
                    np.asarray(self._S))
        if self._psi is not None:
            y = np.asarray(self._endog[:, :, j])
            S = np.asarray(self._S[..., j])
            keep = ~np.isnan(y).all(axis=1)
            exog = self._exog if self._exog.ndim == 2 else self._exog[:, :, j]
            return y[keep], np.asarray(exog)[keep], S[keep]
        # np.asarray: a column of Dask input is computed here
        y, S = np.asarray(self._endog[:, j]), np.asarray(self._S[:, j])
        observed = ~np.isnan(y)
        exog = self._exog if self._exog.ndim == 2 else self._exog[:, :, j]
        return y[observed], np.asarray(exog)[observed], S[observed]

    def problem(self, j, **fit_kwargs):
        """
        Problem ``j`` fitted as a single
        :class:`~statsmodels_mixmeta.MixMeta` model (its full results:
        summary, tests, predictions, plots).
        """
        from ..model import MixMeta
        j = self._index(j)
        if not self.fitted[j]:
            raise ValueError(f"problem {j} was not fitted: "
                             f"{MESSAGES[Status(self.status[j])]}")
        y, X, S = self.problem_data(j)
        extra = {} if self._psi is None else {"bscov": self.bscov}
        if self.groups is not None:
            extra["groups"] = self.groups
        return MixMeta(y, X, S=S, method=self.method, **extra).fit(
            **fit_kwargs)

    def __getitem__(self, j):
        return self.problem(j)

    def _index(self, j):
        j = int(j)
        if not -self.n_problems <= j < self.n_problems:
            raise IndexError(f"problem {j} out of range for "
                             f"{self.n_problems} problems")
        return j % self.n_problems

    def __repr__(self):
        fitted = int(self.fitted.sum())
        return (f"<ManyResults: {self.n_problems} problems, method="
                f"{self.method!r}, {fitted} fitted, "
                f"{int(self.converged.sum())} converged>")
