r"""
Degrees-of-freedom rules for t and F tests of the fixed effects:
``"containment"`` (metafor's ``rma.mv(dfs="contain")``) and
``"satterthwaite"``.  ``"residual"`` lives in
:mod:`~statsmodels_mixmeta.results.inference`, ``"kenward-roger"`` in
:mod:`~statsmodels_mixmeta.results.kenward_roger`.

Containment
-----------
A coefficient is *contained* by a grouping level when the values of its
column are constant within every group of that level (among the values
of the coefficient's outcome).  Its degrees of freedom are

.. math:: \nu_j = c_\ell - p

with ``p`` the number of fixed coefficients and ``c_l`` the number of
cells of the outermost level ``l`` that contains it: the distinct pairs
(level-``l`` group, outcome) among the observed values, i.e. the levels of
the random factor ``outcome | group`` as metafor counts them for a
multivariate model.  A coefficient no level contains (one that varies
within the innermost groups) gets the residual ``N - p``.  Levels are
nested, so "outermost containing level" is the coarsest grouping within
which the coefficient does not vary: an outcome's intercept or an
outer-group moderator is contained by the outer groups; a moderator that
varies between inner groups of an outer group, but not within them, by the
inner level.  With the reference paper's design (``k`` outcomes, ``m``
outer groups, intercepts only) this is ``k m - k``.  Degrees of freedom
below 1 are set to 1.  Joint F tests use the smallest df of the
coefficients the hypothesis involves.

Satterthwaite
-------------
For a contrast ``l' beta`` with ``v(phi) = l' Phi(phi) l``,

.. math::

    \nu = \frac{2\, v^2}{g' W g}, \qquad
    g_s = \frac{\partial v}{\partial \phi_s} = -l'\Phi P_s \Phi l,

``W`` the inverse expected information of the covariance parameters
(restricted for REML, ML otherwise): the delta-method variance of
``v(phi_hat)`` matched to a scaled chi2 (Satterthwaite 1946; Giesbrecht &
Burns 1985).  ``nu`` does not depend on how Psi is parameterised.  A joint
test of ``J`` rows uses the rule of lmerTest (Kuznetsova, Brockhoff &
Christensen 2017): with ``L Phi L' = U diag(d) U'``, the rotated contrasts
``U' L`` are independent, each with its own ``nu_j``;
``E = sum_{nu_j > 2} nu_j / (nu_j - 2)`` and the F statistic
``(Lb - q)'(L Phi L')^{-1}(Lb - q) / J`` is referred to ``F(J, 2E/(E - J))``
when ``E > J``, else to ``F(J, min_j nu_j)``.

References
----------
Satterthwaite FE (1946). An approximate distribution of estimates of
variance components. Biometrics Bulletin 2, 110-114.

Giesbrecht FG, Burns JC (1985). Two-stage analysis based on a mixed model:
large-sample asymptotic theory and small-sample simulation results.
Biometrics 41, 477-486.

Kuznetsova A, Brockhoff PB, Christensen RHB (2017). lmerTest package:
tests in linear mixed effects models. Journal of Statistical Software
82(13).

Viechtbauer W (2010). Conducting meta-analyses in R with the metafor
package. Journal of Statistical Software 36(3) (``rma.mv``, ``dfs``).
"""
import numpy as np

from .inference import DfRule
from .sigma_derivatives import SigmaDerivatives


# ----------------------------------------------------------- containment
def containment_df(model):
    """
    Containment degrees of freedom of each coefficient (module docstring),
    an array in the order of ``params``.
    """
    design = model.design
    long = design.long
    n_values, n_coef = long.X.shape
    codes = ([long.group] + list(long.level_codes[1:]))[
        :model.random.n_levels]
    df = np.full(n_coef, float(n_values - n_coef))
    cells = [np.unique(np.column_stack([code, long.outcome]),
                       axis=0).shape[0] for code in codes]
    for j in range(n_coef):
        column = long.X[:, j]
        rows = long.outcome == j // design.n_terms
        for code, n_cells in zip(codes, cells):     # outer level first
            if _constant_within(column[rows], code[rows]):
                df[j] = n_cells - n_coef
                break
    return np.maximum(df, 1.0)


def _constant_within(values, codes):
    """Whether ``values`` are the same within every group of ``codes``."""
    order = np.argsort(codes, kind="stable")
    v, c = values[order], codes[order]
    same_group = c[1:] == c[:-1]
    return bool(np.all(v[1:][same_group] == v[:-1][same_group]))


class ContainmentRule(DfRule):
    """One df per coefficient by containment (module docstring)."""

    name = "containment"

    def __init__(self, coef_df):
        super().__init__(np.nan)
        self.coef_df = np.asarray(coef_df, dtype=float)

    def _involved(self, L):
        L = np.atleast_2d(L)
        return [np.abs(row) > 0 for row in L]

    def t_df(self, L):
        """The smallest df of the coefficients each row involves."""
        return np.array([self.coef_df[used].min() if used.any()
                         else self.coef_df.min()
                         for used in self._involved(L)])

    def f_test(self, L, q, beta, cov):
        stat, j, _ = DfRule(np.nan).f_test(L, q, beta, cov)
        return stat, j, float(self.t_df(np.abs(np.atleast_2d(L)).sum(
            axis=0)[None])[0])


def _containment_check(model, cov_type):
    return None


def _containment_build(results, cov):
    return ContainmentRule(containment_df(results.model))


# --------------------------------------------------------- Satterthwaite
def satterthwaite_df(derivs, L, cov_work=None):
    """``nu`` of each row of ``L`` (module docstring); infinite without
    covariance parameters."""
    L = np.atleast_2d(L)
    if derivs.n_params == 0:
        return np.full(L.shape[0], np.inf)
    phi = derivs.cov_work if cov_work is None else cov_work
    Lw = derivs.contrast_to_work(L)
    var = np.einsum("jp,pq,jq->j", Lw, phi, Lw)
    g = derivs.contrast_gradients(L, phi)
    spread = np.einsum("js,st,jt->j", g, derivs.W, g)
    with np.errstate(divide="ignore"):
        return np.where(spread > 0, 2.0 * var ** 2 / spread, np.inf)


class SatterthwaiteRule(DfRule):
    """Satterthwaite df per contrast and lmerTest's joint-F rule."""

    name = "satterthwaite"

    def __init__(self, derivatives):
        super().__init__(np.nan)
        self.derivatives = derivatives

    def t_df(self, L):
        return satterthwaite_df(self.derivatives, L)

    def f_test(self, L, q, beta, cov):
        L = np.atleast_2d(L)
        stat, j, _ = DfRule(np.nan).f_test(L, q, beta, cov)
        d, U = np.linalg.eigh(L @ cov @ L.T)
        nu = self.t_df(U.T @ L)
        big = nu > 2
        E = float(np.sum(nu[big] / (nu[big] - 2)))
        denom = 2 * E / (E - j) if E > j else float(np.min(nu))
        return stat, j, float(denom)


def _satterthwaite_check(model, cov_type):
    if model.method not in ("ml", "reml"):
        raise ValueError(
            f"df_method='satterthwaite' needs the information of Psi of an "
            f"ML or REML fit; the model has method={model.method!r} (use "
            f"method='reml' or 'ml', or df_method='containment')")
    if cov_type != "nonrobust":
        raise ValueError(
            f"df_method='satterthwaite' is the df of the model-based "
            f"covariance; cov_type={cov_type!r} brings its own df rule "
            f"(pass use_t=True without df_method)")


def _satterthwaite_build(results, cov):
    return SatterthwaiteRule(SigmaDerivatives(results))
