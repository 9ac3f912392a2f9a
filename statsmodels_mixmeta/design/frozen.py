"""
The design: the validated data of a model, built once and never changed.

A :class:`Design` is what lme4's ``lFormula`` returns: plain data.  It holds
``endog`` ``(n, k)`` with NaN for missing outcomes, ``exog`` ``(n, p)``, the
known covariances (``within_cov`` ``(n, k, k)``, or one full matrix per outer
group, ``group_cov``, for ``addS``), the grouping levels with their random
predictors (:class:`~.grouping.Levels`), the names of rows, outcomes and
coefficients, and the fixed and random term specifications that rebuild
columns from new data.  Derived from it on first use and kept: the "long"
format (one entry per observed outcome value, the input of
:mod:`statsmodels_mixmeta.kernels.batches`), ``X'X`` of the observed values
and the conditioning basis of the fixed effects.

:meth:`Design.subset` (some outer groups) and :meth:`Design.with_endog` (new
outcomes, same missing pattern) derive new designs without re-parsing or
re-validating (:mod:`.resample`); :mod:`.builder` makes a design from the
model's arguments.

Coefficients are ordered outcome-major: all ``p`` terms of outcome 1, then of
outcome 2, ...; the design row of outcome ``j`` of row ``u`` is
``kron(e_j, x_u)``.
"""
from dataclasses import dataclass

import numpy as np

from .grouping import Levels, implicit_levels


class lazy:
    """
    A value computed on first access and kept in the instance's
    ``__dict__`` (which then shadows this descriptor), as
    ``functools.cached_property`` without its lock: designs are built on
    the hot path of small fits.
    """

    def __init__(self, func):
        self.func = func
        self.name = func.__name__
        self.__doc__ = func.__doc__

    def __get__(self, obj, owner=None):
        if obj is None:
            return self
        value = obj.__dict__[self.name] = self.func(obj)
        return value


@dataclass(frozen=True, eq=False)
class LongFormat:
    """
    The observed outcome values in row order, one entry per value.

    Attributes
    ----------
    y : ndarray, (N,)
    X : ndarray, (N, k p)
        Fixed-effects design rows ``kron(e_outcome, x_row)``.
    row, outcome : ndarray of int, (N,)
        Data row and outcome (column of ``endog``) of every value.
    group : ndarray of int, (N,)
        Outer-group code of every value.
    Z : tuple of ndarray
        Per level, the random-effects design rows ``kron(e_outcome,
        z_row)``, ``(N, k q_l)``.
    level_codes : tuple
        Per level, the group code of every value (``None`` for the outer
        level, whose codes are ``group``).
    """

    y: np.ndarray
    X: np.ndarray
    row: np.ndarray
    outcome: np.ndarray
    group: np.ndarray
    Z: tuple
    level_codes: tuple

    @property
    def n_values(self):
        return self.y.shape[0]


@dataclass(frozen=True, eq=False)
class Design:
    """
    The data of a model: outcomes, predictors, known covariances, levels.

    Attributes
    ----------
    endog : ndarray, (n, k)
        Outcomes of the rows used, NaN where missing.
    exog : ndarray, (n, p)
    within_cov : ndarray, (n, k, k)
        Known covariance of each row's outcomes; None with ``group_cov``.
    outcome_names, term_names : tuple of str
    row_labels : ndarray, (n,)
        Labels of the rows used (the data's index, or positions).
    levels : Levels
        Grouping codes, labels and random predictors of every level.
    group_cov : tuple of ndarray, optional
        ``addS``: one full covariance per outer group (code order) over the
        group's observed values in row order.
    fixed_spec : PredictorFormula, optional
        The formula's fitted right-hand side: rebuilds the columns of
        ``exog`` from new data (:class:`~.new_data.PredictorFormula`; a bare
        patsy or formulaic spec for a model rebuilt from its init keywords).
    random_terms : tuple of RandomTerm, optional
        The parsed ``random=`` (grouping factor and one-sided formula per
        level), to rebuild the random predictors from new data.
    labelled : bool
        The input carried pandas labels (results are labelled likewise).
    coef_names : tuple of str, optional
        Names of the coefficients (outcome-major) when they are not the
        usual ``"term"`` / ``"outcome:term"``: the two-stage helper names
        an intercept-only second stage by the first-stage coefficients.
    """

    endog: np.ndarray
    exog: np.ndarray
    within_cov: np.ndarray
    outcome_names: tuple
    term_names: tuple
    row_labels: np.ndarray
    levels: Levels = None
    group_cov: tuple = None
    fixed_spec: object = None
    random_terms: tuple = None
    labelled: bool = False
    coef_names: tuple = None

    def __post_init__(self):
        if self.levels is None:
            object.__setattr__(self, "levels", implicit_levels(
                self.row_labels, self.outcome_names))

    def __getstate__(self):
        # patsy's DesignInfo cannot be pickled; statsmodels drops it too
        # and rebuilds it from the formula (the model restores it)
        state = dict(self.__dict__)
        if type(self.fixed_spec).__module__.startswith("patsy"):
            state["fixed_spec"] = None
        return state

    @property
    def observed(self):
        return ~np.isnan(self.endog)

    @property
    def n_outcomes(self):
        return self.endog.shape[1]

    @property
    def n_terms(self):
        return self.exog.shape[1]

    @property
    def n_coef(self):
        return self.n_outcomes * self.n_terms

    @property
    def n_groups(self):
        """Number of outer (independent) groups."""
        return self.levels.n_groups

    @property
    def n_values(self):
        """Number of observed outcome values."""
        return self.long.n_values

    @property
    def param_names(self):
        if self.coef_names is not None:
            return list(self.coef_names)
        return coefficient_names(self.outcome_names, self.term_names)

    def long_format(self):
        """``y``, ``X``, ``row`` and ``outcome`` of :attr:`long`."""
        long = self.long
        return long.y, long.X, long.row, long.outcome

    @lazy
    def long(self):
        """The observed values in long format (:class:`LongFormat`)."""
        n, k = self.endog.shape
        codes = self.levels.codes
        if k == 1 and not np.isnan(self.endog[:, 0]).any():
            # every row one value: the rows' own arrays, no copies
            return LongFormat(
                self.endog[:, 0], self.exog, np.arange(n),
                np.zeros(n, dtype=np.intp), codes[0],
                tuple(np.asarray(z, dtype=float)
                      for z in self.levels.random_exog),
                (None,) + tuple(codes[1:]))
        row, outcome = np.nonzero(self.observed)
        return LongFormat(
            self.endog[row, outcome],
            expand_by_outcome(self.exog[row], outcome, k), row, outcome,
            codes[0][row],
            tuple(expand_by_outcome(z[row], outcome, k)
                  for z in self.levels.random_exog),
            tuple(None if lev == 0 else c[row]
                  for lev, c in enumerate(codes)))

    @lazy
    def xtx(self):
        """``X'X`` of the observed values (long format)."""
        X = self.long.X
        return X.T @ X

    @lazy
    def basis(self):
        """The conditioning basis of the fixed effects
        (:func:`conditioning_basis`); None for one coefficient."""
        return None if self.n_coef == 1 else conditioning_basis(self.xtx)

    def subset(self, groups):
        """
        The same design with only the outer groups ``groups`` (labels).

        Rows keep their order; level codes, ``addS`` matrices and the long
        format are restricted without re-parsing formulas or re-validating
        the covariances, so that a model built from the result fits exactly
        as one built from those rows.  For leave-one-out, influence and
        cross-validation.

        Parameters
        ----------
        groups : label or sequence of labels
            Labels of outer groups (row labels for a model without
            ``random=``).

        Raises
        ------
        ValueError
            For labels that are not outer groups, or when the fixed effects
            of the rows kept are not estimable.
        """
        from .resample import subset
        return subset(self, groups)

    def with_endog(self, endog):
        """
        The same design with new outcomes ``endog`` ``(n, k)`` (``(n,)`` for
        one outcome), missing exactly where the design's are.

        Everything but the outcomes is shared with this design.  For
        simulation, parametric bootstrap and refits of many data sets.

        Raises
        ------
        ValueError
            For a wrong shape, infinite values, or another missing pattern
            (naming the rows).
        """
        from .resample import with_endog
        return with_endog(self, endog)

    def drop_columns(self, columns):
        """
        The same design without the columns at positions ``columns`` of
        ``exog`` (for every outcome), e.g. the columns of a formula term.

        Outcomes, covariances and levels are shared; the formula's spec is
        dropped (it builds the full columns), so the new design's terms are
        its columns.  For ``drop1`` and other nested fixed-effects models.

        Raises
        ------
        ValueError
            For positions outside ``0..p-1``, or dropping every column.
        """
        from .resample import drop_columns
        return drop_columns(self, columns)


def coefficient_names(outcome_names, term_names):
    """``"{term}"`` for one outcome, ``"{outcome}:{term}"`` for several."""
    if len(outcome_names) == 1:
        return [str(t) for t in term_names]
    return [f"{o}:{t}" for o in outcome_names for t in term_names]


def expand_by_outcome(rows, outcome, n_outcomes):
    """
    Rows ``kron(e_outcome, x)`` of a design with one block of columns per
    outcome: the multivariate fixed design, or a level's random design.
    """
    if n_outcomes == 1:
        return np.asarray(rows, dtype=float)
    n, p = rows.shape
    out = np.zeros((n, n_outcomes * p))
    out[np.arange(n)[:, None], outcome[:, None] * p + np.arange(p)] = rows
    return out


def conditioning_basis(xtx):
    """
    An upper-triangular ``A`` with ``(X A)'(X A) = I`` for ``X'X = xtx``.

    GLS runs on the design ``X A``, whose cross products are as well
    conditioned as the weights allow, however collinear the columns of
    ``X`` (e.g. an intercept beside calendar years); ``beta = A beta_A``.
    Columns are equilibrated before ``X'X`` is factorised.
    """
    scale = 1.0 / np.sqrt(np.diag(xtx))
    chol = np.linalg.cholesky(xtx * np.outer(scale, scale))
    return scale[:, None] * np.linalg.inv(chol).T
