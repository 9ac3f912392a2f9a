r"""
Kenward-Roger inference on the fixed effects of a REML fit: the
small-sample adjusted covariance of ``beta``, the degrees of freedom of
each t contrast and the scaled F test of joint hypotheses.

With ``Phi``, ``P_s``, ``Q_st``, ``R_st`` and ``W`` (the inverse expected
REML information of the covariance parameters) of
:mod:`statsmodels_mixmeta.results.sigma_derivatives`, the adjusted
covariance is (Kenward & Roger 1997, eq. 2-3)

.. math::

    \Phi_A = \Phi + 2\,\Phi \Big[\sum_{s,t} W_{st}
             \big(Q_{st} - P_s \Phi P_t - \tfrac14 R_{st}\big)\Big] \Phi.

For ``H0: L beta = q`` with ``J`` rows the statistic is
``F = (L b - q)' (L Phi_A L')^{-1} (L b - q) / J`` and ``lambda F`` is
referred to ``F(J, m)``, where, with
``Theta = L'(L Phi L')^{-1} L``,

.. math::

    A_1 = \sum_{st} W_{st}\, \mathrm{tr}(\Theta\Phi P_s\Phi)\,
          \mathrm{tr}(\Theta\Phi P_t\Phi), \qquad
    A_2 = \sum_{st} W_{st}\, \mathrm{tr}(\Theta\Phi P_s\Phi\Theta\Phi
          P_t\Phi),

    B = \frac{A_1 + 6A_2}{2J}, \quad
    g = \frac{(J+1)A_1 - (J+4)A_2}{(J+2)A_2}, \quad
    c_1, c_2, c_3 = \frac{g,\; J - g,\; J + 2 - g}{3J + 2(1-g)},

    E^* = \Big(1 - \frac{A_2}{J}\Big)^{-1}, \quad
    V^* = \frac2J\,\frac{1 + c_1 B}{(1 - c_2 B)^2 (1 - c_3 B)}, \quad
    \rho = \frac{V^*}{2E^{*2}},

    m = 4 + \frac{J + 2}{J\rho - 1}, \qquad
    \lambda = \frac{m}{E^*(m - 2)}.

``Theta`` is built from the unadjusted ``Phi``, as in the paper (the
expansions are about ``Phi``; mmrm's ``h_kr_df`` also takes the
unadjusted covariance); an implementation that builds it from ``Phi_A``
gets an ``m`` that differs at a higher order.  For a single contrast (``J = 1``)
``A_1 = A_2 = g' W g / (l' Phi l)^2`` with ``g_s = l' Phi P_s Phi l``, so
that ``g = -1``, ``lambda = 1`` and ``m = 2 (l'Phi l)^2 / (g' W g)``:
exactly the Satterthwaite degrees of freedom of ``l' beta``
(:class:`~statsmodels_mixmeta.results.df_methods.SatterthwaiteRule`).
When ``A_2 = 0`` (no covariance parameters) ``m`` is infinite; when
``J rho <= 1`` the formula has no finite positive ``m`` and infinity is
used (the normal / chi2 limit).

``R`` vanishes for the linear parameterisations used for ``id``,
``diag``, ``unstr``, ``cs`` and ``prop`` Psi's; the ``hcs``, ``ar1``,
``har1`` and ``cor`` families keep the fit's parameters and include ``R``
(see :mod:`~statsmodels_mixmeta.results.sigma_derivatives`).  At a
boundary (a variance at 0) ``W`` is the pseudo-inverse of the information.

References
----------
Kenward MG, Roger JH (1997). Small sample inference for fixed effects from
restricted maximum likelihood. Biometrics 53, 983-997.

Halekoh U, Hojsgaard S (2014). A Kenward-Roger approximation and
parametric bootstrap methods for tests in linear mixed models - the R
package pbkrtest. Journal of Statistical Software 59(9).
"""
import numpy as np

from .inference import DfRule
from .sigma_derivatives import SigmaDerivatives


def adjusted_cov(derivs):
    """``Phi_A`` in the work basis of the fixed effects (formula above)."""
    phi = derivs.cov_work
    if derivs.n_params == 0:
        return phi.copy()
    P = derivs.P
    PPhiP = np.einsum("spq,qr,trk->stpk", P, phi, P)
    inner = np.einsum("st,stpq->pq", derivs.W,
                      derivs.Q - PPhiP - 0.25 * derivs.R)
    adjusted = phi + 2.0 * phi @ inner @ phi
    return (adjusted + adjusted.T) / 2


def kr_scaling(A1, A2, J):
    """``(m, lambda)`` from ``A_1``, ``A_2`` and the number of rows ``J``
    (arrays broadcast); infinite ``m`` and ``lambda = 1`` where the formula
    gives no finite positive ``m``."""
    A1, A2 = np.broadcast_arrays(np.asarray(A1, float),
                                 np.asarray(A2, float))
    J = float(J)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        B = (A1 + 6.0 * A2) / (2.0 * J)
        g = ((J + 1.0) * A1 - (J + 4.0) * A2) / ((J + 2.0) * A2)
        denom = 3.0 * J + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (J - g) / denom, (J + 2.0 - g) / denom
        E = 1.0 / (1.0 - A2 / J)
        V = (2.0 / J) * (1.0 + c1 * B) / ((1.0 - c2 * B) ** 2
                                           * (1.0 - c3 * B))
        rho = V / (2.0 * E ** 2)
        m = 4.0 + (J + 2.0) / (J * rho - 1.0)
        lam = m / (E * (m - 2.0))
    bad = ~(np.isfinite(m) & (m > 0) & (A2 > 0)) | ~np.isfinite(lam)
    m = np.where(bad, np.inf, m)
    lam = np.where(bad, 1.0, lam)
    return m, lam


class KenwardRogerRule(DfRule):
    """
    Kenward-Roger degrees of freedom and adjusted covariance (module
    docstring).

    Attributes
    ----------
    cov : ndarray
        ``Phi_A``, which replaces the model-based covariance of ``beta``.
    derivatives : SigmaDerivatives
    """

    name = "kenward-roger"

    def __init__(self, derivatives):
        super().__init__(np.nan)
        self.derivatives = derivatives
        self.cov_work = adjusted_cov(derivatives)
        self.cov = derivatives.to_beta(self.cov_work)

    def _A(self, L):
        """``(A_1, A_2)`` of the joint contrast ``L``."""
        d = self.derivatives
        Lw = d.contrast_to_work(L)
        phi = d.cov_work
        M = Lw @ phi                                    # (J, p)
        # tr(Theta Phi P_s Phi) = tr((L Phi L')^-1 L Phi P_s Phi L')
        inner = np.einsum("jp,tpq,kq->tjk", M, d.P, M)  # (T, J, J)
        C = np.linalg.solve(M @ Lw.T, inner)            # (T, J, J)
        a = np.trace(C, axis1=1, axis2=2)
        A1 = a @ d.W @ a
        A2 = np.einsum("st,sjk,tkj->", d.W, C, C)
        return A1, A2

    def t_df(self, L):
        """``m`` of each row of ``L`` as a single contrast."""
        d = self.derivatives
        L = np.atleast_2d(L)
        if d.n_params == 0:
            return np.full(L.shape[0], np.inf)
        Lw = d.contrast_to_work(L)
        M = Lw @ d.cov_work
        var = np.einsum("jp,jp->j", M, Lw)
        v = np.einsum("jp,tpq,jq->jt", M, d.P, M) / var[:, None]
        A = np.einsum("js,st,jt->j", v, d.W, v)
        return kr_scaling(A, A, 1)[0]

    def f_test(self, L, q, beta, cov):
        """``(lambda F, J, m)`` with ``F`` on ``cov`` (``Phi_A``)."""
        L = np.atleast_2d(L)
        stat, J, _ = DfRule(np.nan).f_test(L, q, beta, cov)
        if self.derivatives.n_params == 0:
            return stat, J, np.inf
        m, lam = kr_scaling(*self._A(L), J)
        return float(lam) * stat, J, float(m)

    def scaling(self, L):
        """``(m, lambda)`` of the joint test of ``L``."""
        if self.derivatives.n_params == 0:
            return np.inf, 1.0
        m, lam = kr_scaling(*self._A(np.atleast_2d(L)),
                            np.atleast_2d(L).shape[0])
        return float(m), float(lam)


def check(model, cov_type):
    """Kenward-Roger applies to REML fits with the model-based
    covariance; refused otherwise, before fitting."""
    if model.method != "reml":
        raise ValueError(
            f"df_method='kenward-roger' needs a REML fit (its correction "
            f"uses the REML information of Psi); the model has "
            f"method={model.method!r}: build it with method='reml', or use "
            f"df_method='satterthwaite' (ML or REML) or 'containment'")
    if cov_type != "nonrobust":
        raise ValueError(
            f"df_method='kenward-roger' replaces the model-based covariance "
            f"of beta; it does not combine with cov_type={cov_type!r} "
            f"(use cov_type='nonrobust')")


def build(results, cov):
    return KenwardRogerRule(SigmaDerivatives(results))
