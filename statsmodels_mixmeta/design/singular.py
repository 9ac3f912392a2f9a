"""
Singular within-study covariances: which studies have them, and who
refuses them.

The rule.  A study's within-study covariance ``S_u``, restricted to its
observed outcomes, is *singular* when its smallest eigenvalue is at most
:data:`SINGULAR_TOLERANCE` times the largest within-study variance of an
observed outcome in the data: a zero variance, or one too small to be told
from zero beside the other studies' (the rule is relative, so rescaling
``y`` by ``c`` and ``S`` by ``c**2`` changes nothing).  A singular ``S_u``
is

* refused by the fixed-effects, method-of-moments and variance-components
  estimators and by Cochran's Q, which weight each study by ``S_u^{-1}``
  (R's mixmeta stops in a Cholesky factorisation there, naming no study);
* accepted by ML and REML, as in R (which checks only that ``addS`` has no
  negative eigenvalue): the marginal covariance ``S_u + Z_u Psi Z_u'`` is
  positive definite while ``Psi`` is.  A fit whose ``Psi`` reaches a
  boundary at which that marginal covariance is singular too is degenerate
  (the study is fitted exactly, and the likelihood is unbounded there): it
  is refused, naming the rows.

Messages name the rows by the caller's labels, or the ``addS`` groups.  A
model builds one :class:`SingularStudies` and asks it; the singular studies
are found once, on first use.
"""
from functools import cached_property

import numpy as np

from .within_checks import _smallest_observed_eigenvalues
from .labels import describe_rows

#: The smallest eigenvalue of an observed within-study block counts as zero
#: below this fraction of the largest within-study variance in the data.
SINGULAR_TOLERANCE = 1e-12


def singular_rows(within_cov, observed):
    """
    Rows whose observed within-study block is singular, and the scale.

    A block is singular when its smallest eigenvalue is at most
    :data:`SINGULAR_TOLERANCE` times the largest within-study variance of
    an observed outcome in the data (zero, or too small to be told from
    zero beside the other studies' variances).

    Returns
    -------
    singular : ndarray of bool, (n,)
    smallest : ndarray, (n,)
        Smallest eigenvalue of each row's observed block (+inf for a row
        without observed outcomes).
    scale : float
    """
    variances = np.diagonal(within_cov, axis1=1, axis2=2)
    observed_var = np.where(observed, variances, 0.0)
    scale = float(observed_var.max()) if observed_var.size else 0.0
    if within_cov.shape[1] == 1:
        smallest = np.where(observed[:, 0], variances[:, 0], np.inf)
    else:
        smallest = _smallest_observed_eigenvalues(within_cov, observed)[0]
    return smallest <= SINGULAR_TOLERANCE * scale, smallest, scale


class SingularStudies:
    """
    The studies (rows, or ``addS`` groups) of a design whose within-study
    covariance is singular, found on first use and remembered, and the
    checks that refuse them.

    Parameters
    ----------
    design : Design
    group_cov : list of ndarray, optional
        The per-group ``addS`` matrices, when given instead of ``S``.
    outer_labels : sequence, optional
        The labels of the groups of ``group_cov``.
    """

    def __init__(self, design, group_cov=None, outer_labels=None):
        self.design = design
        self.group_cov = group_cov
        self.outer_labels = outer_labels

    @cached_property
    def message(self):
        """Which studies are singular, for messages; "" when none are."""
        return _singular_message(self.design, self.group_cov,
                                 self.outer_labels)

    @cached_property
    def scale(self):
        """The largest within-study variance of an observed outcome."""
        if self.group_cov is not None:
            return max((np.diag(m).max() for m in self.group_cov if m.size),
                       default=0.0)
        within_cov = self.design.within_cov
        if within_cov.shape[1] == 1:
            largest = within_cov.max()    # finite when every row is observed
            if np.isfinite(largest):
                return float(largest)
        variances = np.diagonal(within_cov, axis1=1, axis2=2)
        return float(np.where(self.design.observed, variances, 0.0).max())

    def check_weights(self, method):
        """
        The fixed-effects, method-of-moments and variance-components
        estimators weight each study by ``S_i^{-1}``, so every observed
        within-study block must be positive definite (R's mixmeta stops in
        its Cholesky factorisation without naming a study).  ML and REML
        accept a singular ``S_i`` as R does: the marginal covariance
        ``S_i + Z_i Psi Z_i'`` is positive definite while ``Psi`` is (see
        :meth:`marginal_error` and :meth:`check_marginal`).
        """
        if method in ("fixed", "mm", "vc"):
            self.require_positive_definite(f"method={method!r}")

    def require_positive_definite(self, user):
        """
        Raise naming the rows (or ``addS`` groups) whose within-study
        covariance is singular, for ``user``, a computation that weights by
        its inverse (e.g. ``"method='fixed'"``, or Cochran's Q).
        """
        if self.message:
            raise ValueError(
                f"{self.message}; {user} weights each study by the inverse "
                "of its within-study covariance, which must be positive "
                "definite: use method='reml' or 'ml' (a positive Psi keeps "
                "the marginal covariance positive definite), or leave these "
                "rows out")

    def marginal_error(self, error):
        """
        The error to raise when a likelihood kernel finds a marginal
        covariance ``S_i + Z_i Psi Z_i'`` that is not positive definite: a
        :class:`SingularCovarianceError` naming the rows (or groups) whose
        ``S_i`` is singular, if there are any; else ``error`` itself.
        """
        if not self.message:
            return error
        return SingularCovarianceError(
            f"the marginal covariance S + Z Psi Z' is singular: "
            f"{self.message}, and the fit reached a Psi at which their "
            "marginal covariance is singular too (where Psi is zero, a study "
            "with zero within-study variance is fitted exactly and the "
            "likelihood is unbounded); check these variances, or leave these "
            "rows out")

    def check_marginal(self, psis, level_names):
        """
        After an ML/REML fit: raise if a study with a singular within-study
        covariance also has a singular marginal covariance at the estimated
        Psi (on its boundary, e.g. 0): such a fit is degenerate, the study
        being fitted exactly.

        Without ``random=`` the marginal covariance of row ``u`` is
        ``S_u + Psi`` on its observed outcomes, checked exactly.  With
        grouping levels or ``addS`` it is checked when every Psi is zero
        (then it is ``S`` itself); a Psi that is singular but not zero is
        left to the likelihood kernels, which fail on a singular marginal
        covariance (see :meth:`marginal_error`).  Costs one small
        eigenvalue problem when Psi is positive definite, the usual case.
        """
        if not psis:
            return
        psis = [np.asarray(psi, dtype=float) for psi in psis]
        tolerance = SINGULAR_TOLERANCE * self.scale
        if len(psis) != 1 or level_names != [None] or \
                self.group_cov is not None:
            if all(np.abs(psi).max() <= tolerance for psi in psis) and \
                    self.message:
                raise SingularCovarianceError(
                    f"the fit is degenerate: {self.message}, and the "
                    "estimated Psi is zero, so that the marginal covariance "
                    "of these studies is singular and they are fitted "
                    "exactly; check these variances, or leave these rows "
                    "out")
            return
        psi = psis[0]
        smallest = psi[0, 0] if psi.shape == (1, 1) else \
            np.linalg.eigvalsh(psi)[0]
        if smallest > tolerance or not self.message:
            return
        self._check_rows_at(psi, tolerance)

    def _check_rows_at(self, psi, tolerance):
        """Raise naming the rows whose ``S_u + Psi`` is singular."""
        design = self.design
        rows = np.flatnonzero(singular_rows(design.within_cov,
                                            design.observed)[0])
        smallest = _smallest_observed_eigenvalues(
            design.within_cov[rows] + psi, design.observed[rows])[0]
        bad = rows[smallest <= tolerance]
        if bad.size:
            raise SingularCovarianceError(
                "the fit is degenerate: S is singular (zero or tiny "
                "within-study variance) at "
                f"{describe_rows(bad, design.row_labels)}, and the estimated "
                "Psi is too (on its boundary), so that the marginal "
                "covariance S + Psi of these rows is singular and they are "
                "fitted exactly; check these variances, or leave these rows "
                "out")


class SingularCovarianceError(np.linalg.LinAlgError):
    """A singular marginal covariance traced to singular within-study
    covariances (a ``LinAlgError``, hence a ``ValueError``)."""


def _singular_message(design, group_cov, outer_labels):
    if group_cov is not None:
        scale = max((np.diag(m).max() for m in group_cov if m.size),
                    default=0.0)
        bad = [label for label, matrix in zip(outer_labels, group_cov)
               if matrix.size and np.linalg.eigvalsh(matrix)[0] <=
               SINGULAR_TOLERANCE * scale]
        if not bad:
            return ""
        shown = ", ".join(str(b) for b in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return (f"addS is singular (zero or tiny variances) for group"
                f"{'s' if len(bad) > 1 else ''} {shown}{more}")
    singular, smallest, scale = singular_rows(design.within_cov,
                                              design.observed)
    if not singular.any():
        return ""
    rows = np.flatnonzero(singular)
    values = ", ".join(f"{smallest[i]:.3g} (row {design.row_labels[i]})"
                       for i in rows[:5])
    what = "variance" if design.n_outcomes == 1 else \
        "smallest eigenvalue of the observed block"
    return (f"S is singular (zero or tiny within-study variance) at "
            f"{describe_rows(rows, design.row_labels)}: {what} {values}, "
            f"at most {SINGULAR_TOLERANCE:g} times the largest within-study "
            f"variance {scale:.3g}")
