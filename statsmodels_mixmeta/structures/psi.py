r"""
Parameterisations of the random-effects covariance matrix Psi.

A structure maps an unconstrained parameter vector ``theta`` (any real
values) to a symmetric positive (semi-)definite ``dim x dim`` matrix
``Psi(theta)`` and supplies the analytic derivatives ``dPsi/dtheta_t`` as full
symmetric matrices, so that the likelihood code can apply the chain rule
``dl/dtheta_t = sum(G * jacobian[t])`` with ``G = dl/dPsi``.  The names
follow the ``bscov`` argument of R's mixmeta (Sera et al. 2019).

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
import math

import numpy as np
from scipy.special import expit, logit

STRUCTURE_NAMES = ("unstr", "diag", "id", "cs", "hcs", "ar1", "har1", "prop",
                   "cor", "fixed")

#: Bounds used by ``start`` to keep a correlation away from its limits.
_AR1_RHO_LIMIT = 0.99
_CS_EXPIT_LIMITS = (0.005, 0.995)


def _as_square(matrix, dim, what):
    """Return ``matrix`` as a symmetric float ``(dim, dim)`` array."""
    matrix = np.asarray(matrix, dtype=float)
    if dim == 1 and matrix.size == 1:
        matrix = matrix.reshape(1, 1)
    if matrix.shape != (dim, dim):
        raise ValueError(f"{what} must be a {dim}x{dim} matrix (dim x dim); "
                         f"got shape {matrix.shape}")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{what} contains non-finite values")
    asymmetry = np.max(np.abs(matrix - matrix.T))
    if asymmetry > 1e-8 * max(np.max(np.abs(matrix)), 1.0):
        raise ValueError(f"{what} is not symmetric; largest "
                         f"|{what} - {what}.T| is {asymmetry:.3g}")
    return (matrix + matrix.T) / 2


def _check_eigenvalues(matrix, what, definite):
    """Raise unless ``matrix`` is positive definite (or semi-definite)."""
    eigenvalues = np.linalg.eigvalsh(matrix)
    tolerance = 1e-10 * max(np.max(np.abs(eigenvalues)), 1e-300)
    smallest = eigenvalues[0]
    if definite and smallest <= tolerance:
        raise ValueError(f"{what} must be positive definite; its smallest "
                         f"eigenvalue is {smallest:.6g}")
    if not definite and smallest < -tolerance:
        raise ValueError(f"{what} must be positive semi-definite; its smallest"
                         f" eigenvalue is {smallest:.6g}")


def _scale_correlation(sd, corr):
    """Return ``Psi = D corr D`` with ``D = diag(|sd|)`` and ``dPsi/dsd``.

    Parameters
    ----------
    sd : ndarray, shape (k,)
        Standard deviations; only their absolute values matter.
    corr : ndarray, shape (k, k)
        Correlation matrix.

    Returns
    -------
    psi : ndarray, shape (k, k)
    jacobian : ndarray, shape (k, k, k)
        ``jacobian[j] = sign(sd_j) (e_j a' + a e_j') o corr`` with
        ``a = |sd|`` and ``sign(0) = 1``.
    """
    scale = np.abs(sd)
    sign = np.where(sd >= 0, 1.0, -1.0)
    rows = corr * scale[None, :] * sign[:, None]
    idx = np.arange(sd.size)
    jacobian = np.zeros((sd.size,) * 3)
    jacobian[idx, idx, :] = rows
    jacobian[idx, :, idx] += rows
    return np.outer(scale, scale) * corr, jacobian


def _sd_and_corr(psi):
    """Return standard deviations and correlations (nan where sd is 0)."""
    sd = np.sqrt(np.clip(np.diag(psi), 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        corr = psi / np.outer(sd, sd)
    return sd, corr


def _mean_finite(values, default):
    """Mean of the finite entries of ``values``, or ``default`` if none."""
    values = np.asarray(values)[np.isfinite(values)]
    return float(np.mean(values)) if values.size else default


class PsiStructure(abc.ABC):
    """
    Map an unconstrained vector ``theta`` to a covariance matrix Psi.

    Parameters
    ----------
    dim : int
        Number of random effects, the order of Psi.
    psi_fix : array_like, optional
        Fixed matrix used by ``prop``, ``cor`` and ``fixed``; must be None
        for the other structures.

    Notes
    -----
    See the module docstring for each parameterisation.
    """

    name = None
    #: None (psi_fix not used), "pd", "correlation" or "psd".
    psi_fix_kind = None
    min_dim = 1

    def __init__(self, dim, psi_fix=None):
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) \
                or dim < 1:
            raise ValueError(f"dim must be a positive integer; got {dim!r}")
        self.dim = int(dim)
        if self.dim < self.min_dim:
            raise ValueError(
                f"bscov='{self.name}' needs at least {self.min_dim} random "
                f"effects; got a {self.dim}×{self.dim} Ψ")
        self.psi_fix = self._validate_psi_fix(psi_fix)
        self._set_square_scale()

    def _validate_psi_fix(self, psi_fix):
        """Check ``psi_fix`` against ``psi_fix_kind``; return it validated."""
        if self.psi_fix_kind is None:
            if psi_fix is not None:
                raise ValueError(f"bscov='{self.name}' does not use psi_fix; "
                                 "psi_fix is only for 'prop', 'cor', 'fixed'")
            return None
        if psi_fix is None:
            raise ValueError(
                f"bscov='{self.name}' needs psi_fix, a {self.dim}x{self.dim} "
                f"{self._psi_fix_description}")
        matrix = _as_square(psi_fix, self.dim, "psi_fix")
        if self.psi_fix_kind == "correlation" and not np.allclose(
                np.diag(matrix), 1.0, rtol=0, atol=1e-10):
            raise ValueError(
                f"bscov='{self.name}' needs psi_fix to be a correlation "
                f"matrix with unit diagonal; got diagonal {np.diag(matrix)}")
        _check_eigenvalues(matrix, "psi_fix", self.psi_fix_kind != "psd")
        return matrix

    @property
    def _psi_fix_description(self):
        return {"pd": "symmetric positive definite matrix",
                "correlation": "correlation matrix (unit diagonal, positive "
                               "definite)",
                "psd": "symmetric positive semi-definite matrix (a scalar "
                       "if dim is 1)"}[self.psi_fix_kind]

    def _set_square_scale(self):
        """``scale`` when Psi is 1 x 1 and equal to ``scale * theta**2``."""
        if self.dim == 1 and self.n_params == 1 and self.name in (
                "unstr", "diag", "id", "prop", "cor"):
            fix = 1.0 if self.psi_fix is None or self.name == "cor" \
                else float(np.asarray(self.psi_fix).reshape(-1)[0])
            self._square_scale = fix

    def __repr__(self):
        return f"{type(self).__name__}(dim={self.dim})"

    @property
    @abc.abstractmethod
    def n_params(self):
        """int : Length of ``theta``."""

    def _check_theta(self, theta):
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if theta.shape != (self.n_params,):
            raise ValueError(
                f"bscov='{self.name}' with dim {self.dim} needs theta of "
                f"length {self.n_params}; got shape {theta.shape}")
        if not np.all(np.isfinite(theta)):
            raise ValueError(f"theta contains non-finite values: {theta}")
        return theta

    def psi(self, theta):
        """
        Covariance matrix Psi at ``theta``.

        Parameters
        ----------
        theta : array_like, shape (n_params,)

        Returns
        -------
        ndarray, shape (dim, dim)
        """
        return self._evaluated(theta)[0]

    # A 1 x 1 Psi that is ``scale * theta**2`` (set by the structures for
    # which that holds) skips the general computation.
    _square_scale = None

    def _evaluated(self, theta):
        """``(psi, jacobian)`` at ``theta``, remembering the last one (the
        optimiser asks for both, several times, at each point)."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        key = theta.tobytes()
        last = self.__dict__.get("_last")
        if last is not None and last[0] == key:
            return last[1], last[2]
        if self._square_scale is not None and theta.shape == (1,) and \
                math.isfinite(theta[0]):
            t = float(theta[0])
            psi = np.array([[self._square_scale * t * t]])
            jac = np.array([[[2.0 * self._square_scale * t]]])
        else:
            theta = self._check_theta(theta)
            psi, jac = self._psi_and_jacobian(theta)
        psi.flags.writeable = False
        jac.flags.writeable = False
        self.__dict__["_last"] = (key, psi, jac)
        return psi, jac

    def jacobian(self, theta):
        """
        Derivatives of Psi with respect to each entry of ``theta``.

        Parameters
        ----------
        theta : array_like, shape (n_params,)

        Returns
        -------
        ndarray, shape (n_params, dim, dim)
            ``jacobian[t] = dPsi/dtheta_t``, each a full symmetric matrix.
        """
        return self._evaluated(theta)[1]

    def kinked(self):
        """
        Parameters that enter Psi through their absolute value with a
        non-zero slope at 0 (the standard deviations of ``hcs``, ``har1``
        and ``cor``): ``sd = 0`` is then a boundary where the likelihood may
        have a kink, and an optimum there need not have a zero score.
        """
        return np.zeros(self.n_params, dtype=bool)

    def curvature(self, theta):
        """
        Second derivatives ``d2Psi / dtheta_s dtheta_t``, shape
        ``(n_params, n_params, dim, dim)``.

        By central differences of the analytic Jacobian (exact to rounding
        for structures that are quadratic in ``theta``, which override it).
        """
        theta = self._check_theta(theta)
        out = np.empty((self.n_params,) + (self.n_params, self.dim, self.dim))
        steps = 1e-5 * np.maximum(np.abs(theta), 1e-2)
        for s, h in enumerate(steps):
            shift = np.zeros(self.n_params)
            shift[s] = h
            out[s] = (self._psi_and_jacobian(theta + shift)[1]
                      - self._psi_and_jacobian(theta - shift)[1]) / (2 * h)
        return (out + out.transpose(1, 0, 2, 3)) / 2

    @abc.abstractmethod
    def _psi_and_jacobian(self, theta):
        """Return ``(psi, jacobian)`` for a validated ``theta``."""

    def start(self, psi):
        """
        Parameters whose Psi approximates a given matrix.

        Parameters
        ----------
        psi : array_like, shape (dim, dim)
            Symmetric positive semi-definite matrix, e.g. ``0.001 * I`` or a
            user's ``init_psi``.

        Returns
        -------
        ndarray, shape (n_params,)
            ``self.psi(self.start(psi))`` equals ``psi`` when ``psi`` lies in
            the structure (correlations inside the clipping range).
        """
        psi = _as_square(psi, self.dim, "psi")
        _check_eigenvalues(psi, "psi", definite=False)
        return np.asarray(self._start(psi), dtype=float)

    @abc.abstractmethod
    def _start(self, psi):
        """Return start values for a validated symmetric PSD ``psi``."""

    def param_names(self, labels):
        """
        Short names of the entries of ``theta``.

        Parameters
        ----------
        labels : sequence of str, length dim
            Names of the random effects (outcomes or random terms).

        Returns
        -------
        list of str
            ``chol[row,col]`` (unstr), ``sd[label]`` (diag, cor and the sds
            of hcs and har1), ``sd`` (id, cs, ar1), ``logit_rho`` (the scaled
            logit of cs and hcs), ``atanh_rho`` (ar1, har1), ``scale`` (prop).
        """
        labels = [str(label) for label in labels]
        if len(labels) != self.dim:
            raise ValueError(f"param_names needs {self.dim} labels; got "
                             f"{len(labels)}")
        return self._param_names(labels)

    @abc.abstractmethod
    def _param_names(self, labels):
        """Return names for validated labels."""


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
