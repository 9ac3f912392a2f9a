r"""
Parameterisations of the random-effects covariance matrix Psi.

A structure maps an unconstrained parameter vector ``theta`` (any real
values) to a symmetric positive (semi-)definite ``dim x dim`` matrix
``Psi(theta)`` and supplies the analytic derivatives ``dPsi/dtheta_t`` as full
symmetric matrices, so that the likelihood code can apply the chain rule
``dl/dtheta_t = sum(G * jacobian[t])`` with ``G = dl/dPsi``.  The names
follow the ``bscov`` argument of R's mixmeta (Sera et al. 2019).  This module
holds the concrete structures, their registry and :func:`make_structure`;
the interface they share is :class:`.psi_base.PsiStructure`.

Notation: ``k = dim``; ``I`` the identity; ``1`` a vector of ones;
``expit(x) = 1 / (1 + exp(-x))``; ``D = diag(|s_1|, ..., |s_k|)``; ``F`` the
user's ``psi_fix``.

Parameterisations (p = number of parameters)
--------------------------------------------
``unstr``  p = k(k+1)/2.  ``theta`` is the lower-triangular Cholesky factor
    ``L`` read column by column (L11, L21, ..., Lk1, L22, L32, ..., Lkk); the
    diagonal is *not* log-transformed.  ``Psi = L L'`` and
    ``dPsi/dtheta_t = E_t L' + L E_t'``, with ``E_t`` the unit matrix at the
    position of ``theta_t`` in ``L``.
``diag``   p = k.  ``Psi = diag(theta_1^2, ..., theta_k^2)``.
``id``     p = 1.  ``Psi = theta^2 I``.
``cs``     p = 2, k >= 2.  ``theta = (s, a)``,
    ``Psi = s^2 [(1 - rho) I + rho 1 1']`` with
    ``rho = lo + (1 - lo) expit(a)`` and ``lo = -1/(k - 1)``, so that
    ``rho`` stays in ``(lo, 1)``, the range where Psi is positive definite.
``hcs``    p = k + 1, k >= 2.  ``theta = (s_1, ..., s_k, a)``,
    ``Psi = D R D`` with ``R = (1 - rho) I + rho 1 1'`` and ``rho`` as in cs.
``ar1``    p = 2, k >= 2.  ``theta = (s, a)``,
    ``Psi_ij = s^2 rho^|i-j|`` with ``rho = tanh(a)``.
``har1``   p = k + 1, k >= 2.  ``theta = (s_1, ..., s_k, a)``,
    ``Psi = D R D`` with ``R_ij = rho^|i-j|`` and ``rho = tanh(a)``.
``prop``   p = 1.  ``Psi = theta^2 F`` with ``F`` symmetric positive definite.
``cor``    p = k.  ``Psi = D F D`` with ``F`` a correlation matrix (symmetric,
    unit diagonal, positive definite).
``fixed``  p = 0.  ``Psi = F`` with ``F`` symmetric positive semi-definite; a
    scalar ``F`` is accepted when k = 1 (``psi_fix=0`` removes a level).

In the power ``rho^|i-j|`` the lag-0 term is 1 (also when ``rho = 0``) and
its derivative ``|i-j| rho^(|i-j|-1) drho/da`` is 0 at lag 0.

Standard deviations enter only squared (on the diagonal) or through their
absolute value (off the diagonal), so ``s = 0`` lies inside the parameter
space and the sign of ``s`` never matters: ``Psi(theta)`` always stays in the
family.  Where ``|s|`` is not differentiable (``s = 0``) the Jacobian uses the
right derivative, which points into the interior of the natural parameter
space ``s >= 0``.  The correlation limits (``rho -> lo`` or ``rho -> +-1``)
are reached only as ``a -> +-infinity``.

References
----------
Sera F, Armstrong B, Blangiardo M, Gasparrini A (2019). An extended
mixed-effects framework for meta-analysis. Statistics in Medicine 38,
5429-5444.
"""

import abc

import numpy as np
from scipy.special import expit, logit

from .psi_base import (PsiStructure, _mean_finite, _scale_correlation,
                       _sd_and_corr)

STRUCTURE_NAMES = ("unstr", "diag", "id", "cs", "hcs", "ar1", "har1", "prop",
                   "cor", "fixed")

#: Bounds used by ``start`` to keep a correlation away from its limits.
_AR1_RHO_LIMIT = 0.99
_CS_EXPIT_LIMITS = (0.005, 0.995)


class Unstructured(PsiStructure):
    """Unstructured Psi through its Cholesky factor, ``Psi = L L'``."""

    name = "unstr"

    @property
    def n_params(self):
        return self.dim * (self.dim + 1) // 2

    def _lower_indices(self):
        """Row and column of each theta entry in L (column-major vech)."""
        cached = self.__dict__.get("_lower_index_cache")
        if cached is None:
            cols, rows = np.triu_indices(self.dim)
            cached = self.__dict__["_lower_index_cache"] = (rows, cols)
        return cached

    def _psi_and_jacobian(self, theta):
        rows, cols = self._lower_indices()
        lower = np.zeros((self.dim, self.dim))
        lower[rows, cols] = theta
        idx = np.arange(self.n_params)
        jacobian = np.zeros((self.n_params, self.dim, self.dim))
        jacobian[idx, rows, :] = lower[:, cols].T
        jacobian[idx, :, rows] += lower[:, cols].T
        return lower @ lower.T, jacobian

    def curvature(self, theta):
        """Constant second derivatives of ``L L'``: ``E_s E_t' + E_t E_s'``."""
        self._check_theta(theta)
        rows, cols = self._lower_indices()
        n = self.n_params
        units = np.zeros((n, self.dim, self.dim))
        units[np.arange(n), rows, cols] = 1.0
        products = np.einsum("sab,tcb->stac", units, units)
        return products + products.transpose(1, 0, 2, 3)

    def _start(self, psi):
        scale = np.max(np.diag(psi)) if np.max(np.diag(psi)) > 0 else 1.0
        for ridge in (0.0, 1e-10, 1e-8, 1e-6, 1e-4):
            try:
                ridged = psi + ridge * scale * np.eye(self.dim)
                lower = np.linalg.cholesky(ridged)
                break
            except np.linalg.LinAlgError:
                continue
        else:  # pragma: no cover - a PSD matrix always succeeds above
            raise ValueError("could not factorise psi")
        rows, cols = self._lower_indices()
        return lower[rows, cols]

    def _at_zero_bound(self):
        rows, cols = self._lower_indices()
        return rows == cols

    def _param_names(self, labels):
        rows, cols = self._lower_indices()
        return [f"chol[{labels[i]},{labels[j]}]" for i, j in zip(rows, cols)]


class Diagonal(PsiStructure):
    """Independent random effects, ``Psi = diag(theta^2)``."""

    name = "diag"

    @property
    def n_params(self):
        return self.dim

    def _psi_and_jacobian(self, theta):
        return _scale_correlation(theta, np.eye(self.dim))

    def _start(self, psi):
        return np.sqrt(np.clip(np.diag(psi), 0.0, None))

    def _param_names(self, labels):
        return [f"sd[{label}]" for label in labels]


class Identity(PsiStructure):
    """Equal independent variances, ``Psi = theta^2 I``."""

    name = "id"

    @property
    def n_params(self):
        return 1

    def _psi_and_jacobian(self, theta):
        eye = np.eye(self.dim)
        return theta[0] ** 2 * eye, (2 * theta[0] * eye)[None]

    def _start(self, psi):
        return [np.sqrt(max(np.mean(np.diag(psi)), 0.0))]

    def _param_names(self, labels):
        return ["sd"]


class _CorrelationFamily(PsiStructure):
    """Psi from one common sd or k sds and a one-parameter correlation."""

    min_dim = 2
    heterogeneous = False

    @property
    def n_params(self):
        return self.dim + 1 if self.heterogeneous else 2

    @abc.abstractmethod
    def _corr_and_derivative(self, a):
        """Return the correlation matrix R(a) and dR/da."""

    @abc.abstractmethod
    def _start_a(self, corr):
        """Return ``a`` for a matrix of correlations (nan where undefined)."""

    def _psi_and_jacobian(self, theta):
        sd, a = theta[:-1], theta[-1]
        corr, dcorr = self._corr_and_derivative(a)
        if not self.heterogeneous:
            sd = np.full(self.dim, sd[0])
        psi, sd_jacobian = _scale_correlation(sd, corr)
        if not self.heterogeneous:
            sd_jacobian = sd_jacobian.sum(axis=0, keepdims=True)
        a_jacobian = np.outer(np.abs(sd), np.abs(sd)) * dcorr
        return psi, np.concatenate([sd_jacobian, a_jacobian[None]])

    def kinked(self):
        return np.append(np.full(self.n_params - 1, self.heterogeneous),
                         False)

    def sd_params(self):
        return np.append(np.ones(self.n_params - 1, dtype=bool), False)

    def _start(self, psi):
        sd, corr = _sd_and_corr(psi)
        if not self.heterogeneous:
            sd = [np.sqrt(np.mean(np.diag(psi)))]
        return np.append(sd, self._start_a(corr))

    def _param_names(self, labels):
        sds = [f"sd[{label}]" for label in labels] if self.heterogeneous \
            else ["sd"]
        return sds + [self._rho_name]


class CompoundSymmetry(_CorrelationFamily):
    """Common variance and correlation, ``Psi = s^2 [(1-rho) I + rho 11']``."""

    name = "cs"
    _rho_name = "logit_rho"

    @property
    def _rho_lower(self):
        return -1.0 / (self.dim - 1)

    def _corr_and_derivative(self, a):
        lower = self._rho_lower
        weight = expit(a)
        rho = lower + (1 - lower) * weight
        offdiag = np.ones((self.dim, self.dim)) - np.eye(self.dim)
        drho = (1 - lower) * weight * (1 - weight)
        return np.eye(self.dim) + rho * offdiag, drho * offdiag

    def _start_a(self, corr):
        lower = self._rho_lower
        rho = _mean_finite(corr[~np.eye(self.dim, dtype=bool)], 0.0)
        weight = np.clip((rho - lower) / (1 - lower), *_CS_EXPIT_LIMITS)
        return logit(weight)


class HeterogeneousCompoundSymmetry(CompoundSymmetry):
    """Own variances, common correlation, ``Psi = D R_cs D``."""

    name = "hcs"
    heterogeneous = True


class Autoregressive(_CorrelationFamily):
    """First-order autoregressive, ``Psi_ij = s^2 rho^|i-j|``."""

    name = "ar1"
    _rho_name = "atanh_rho"

    def _corr_and_derivative(self, a):
        rho = np.tanh(a)
        lag = np.abs(np.subtract.outer(np.arange(self.dim),
                                       np.arange(self.dim)))
        corr = np.where(lag == 0, 1.0, rho ** lag)
        dcorr = np.where(lag == 0, 0.0, lag * rho ** np.maximum(lag - 1, 0))
        return corr, dcorr * (1 - rho ** 2)

    def _start_a(self, corr):
        rho = _mean_finite(np.diag(corr, k=1), 0.0)
        return np.arctanh(np.clip(rho, -_AR1_RHO_LIMIT, _AR1_RHO_LIMIT))


class HeterogeneousAutoregressive(Autoregressive):
    """Own variances, AR(1) correlation, ``Psi = D R_ar1 D``."""

    name = "har1"
    heterogeneous = True


class Proportional(PsiStructure):
    """Psi proportional to a fixed matrix, ``Psi = theta^2 psi_fix``."""

    name = "prop"
    psi_fix_kind = "pd"

    @property
    def n_params(self):
        return 1

    def _psi_and_jacobian(self, theta):
        return (theta[0] ** 2 * self.psi_fix,
                (2 * theta[0] * self.psi_fix)[None])

    def _start(self, psi):
        ratio = np.mean(np.diag(psi) / np.diag(self.psi_fix))
        return [np.sqrt(max(ratio, 0.0))]

    def _param_names(self, labels):
        return ["scale"]


class FixedCorrelation(PsiStructure):
    """Free sds with a fixed correlation matrix, ``Psi = D psi_fix D``."""

    name = "cor"
    psi_fix_kind = "correlation"

    @property
    def n_params(self):
        return self.dim

    def kinked(self):
        return np.full(self.n_params, self.dim > 1)

    def _psi_and_jacobian(self, theta):
        return _scale_correlation(theta, self.psi_fix)

    def _start(self, psi):
        return np.sqrt(np.clip(np.diag(psi), 0.0, None))

    def _param_names(self, labels):
        return [f"sd[{label}]" for label in labels]


class Fixed(PsiStructure):
    """Psi fully known, ``Psi = psi_fix``; no parameters."""

    name = "fixed"
    psi_fix_kind = "psd"

    @property
    def n_params(self):
        return 0

    def _psi_and_jacobian(self, theta):
        return self.psi_fix.copy(), np.zeros((0, self.dim, self.dim))

    def _start(self, psi):
        return np.zeros(0)

    def _param_names(self, labels):
        return []


_STRUCTURES = {cls.name: cls for cls in (
    Unstructured, Diagonal, Identity, CompoundSymmetry,
    HeterogeneousCompoundSymmetry, Autoregressive, HeterogeneousAutoregressive,
    Proportional, FixedCorrelation, Fixed)}


def make_structure(name, dim, psi_fix=None):
    """
    Build the Psi structure called ``name``.

    Parameters
    ----------
    name : str
        One of ``STRUCTURE_NAMES`` (R mixmeta's ``bscov``), in any case.
    dim : int
        Order of Psi.
    psi_fix : array_like, optional
        Required by ``prop``, ``cor`` and ``fixed``.

    Returns
    -------
    PsiStructure
    """
    key = name.lower() if isinstance(name, str) else name
    if key not in _STRUCTURES:
        valid = ", ".join(f"'{valid}'" for valid in STRUCTURE_NAMES)
        raise ValueError(f"unknown bscov={name!r}; valid names are {valid}")
    return _STRUCTURES[key](dim, psi_fix)
