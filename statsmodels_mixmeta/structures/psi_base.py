r"""
The interface every Psi structure shares, and the helpers it checks with.

:class:`PsiStructure` is the abstract base of the parameterisations in
:mod:`.psi`: it validates ``dim``, ``psi_fix`` and ``theta``, remembers the
last ``(Psi, dPsi/dtheta)`` it evaluated, takes the shortcut for a single
variance ``c theta**2``, and supplies bounds, curvature by central
differences of the analytic Jacobian, start values and parameter names on top
of the few methods a concrete structure implements (``n_params``,
``_psi_and_jacobian``, ``_start``, ``_param_names``).  The small helpers
below check symmetric matrices and split or scale covariances and
correlations for the structures.
"""

import abc
import math

import numpy as np


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
        self.square_scale = self._find_square_scale()

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

    def _find_square_scale(self):
        """``c`` when Psi is 1 x 1 and equal to ``c * theta**2``, else None."""
        if self.dim == 1 and self.n_params == 1 and self.name in (
                "unstr", "diag", "id", "prop", "cor"):
            return (1.0 if self.psi_fix is None or self.name == "cor"
                    else float(np.asarray(self.psi_fix).reshape(-1)[0]))
        return None

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

    #: float or None : ``c`` when Psi is a single variance ``c theta**2``
    #: (a 1 x 1 ``unstr``, ``diag``, ``id``, ``prop`` or ``cor``; ``c`` is
    #: ``psi_fix`` for ``prop`` and 1 otherwise), else None.  The optimiser
    #: then works in the variance itself, and ``psi``/``jacobian`` skip the
    #: general computation.
    square_scale = None

    def _evaluated(self, theta):
        """``(psi, jacobian)`` at ``theta``, remembering the last one (the
        optimiser asks for both, several times, at each point)."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        key = theta.tobytes()
        last = self.__dict__.get("_last")
        if last is not None and last[0] == key:
            return last[1], last[2]
        if self.square_scale is not None and theta.shape == (1,) and \
                math.isfinite(theta[0]):
            t = float(theta[0])
            psi = np.array([[self.square_scale * t * t]])
            jac = np.array([[[2.0 * self.square_scale * t]]])
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

    def sd_params(self):
        """
        Parameters measured in the units of a standard deviation: Psi is
        homogeneous of degree two in them (``Psi(c theta) = c**2 Psi(theta)``
        over these entries, the others fixed).  They are the Cholesky
        entries of ``unstr``, the standard deviations, and the scale of
        ``prop``; the correlation parameters of ``cs``, ``hcs``, ``ar1`` and
        ``har1`` are unitless.  Multiplying the data by ``c`` multiplies the
        former by ``|c|`` and leaves the latter alone, so the optimiser
        measures steps and gradients in these units.

        Returns
        -------
        ndarray of bool, shape (n_params,)
        """
        return np.ones(self.n_params, dtype=bool)

    def bounds(self):
        """
        Bounds of the natural parameter space, one ``(lower, upper)`` row
        per parameter.

        ``theta`` itself is unconstrained (a standard deviation enters
        only squared or through its absolute value), but each Psi has a
        representative with every standard deviation and every diagonal
        Cholesky entry ``>= 0``: those have lower bound 0, where Psi
        reaches the boundary of the positive semi-definite matrices (a
        variance at 0, a singular Psi), as lme4's ``lower`` of theta.  The
        correlation parameters are unbounded: a correlation reaches its
        limit only as its parameter goes to infinity.

        Returns
        -------
        ndarray, shape (n_params, 2)
        """
        out = np.full((self.n_params, 2), [-np.inf, np.inf])
        out[self._at_zero_bound(), 0] = 0.0
        return out

    def _at_zero_bound(self):
        """Parameters whose natural lower bound is 0 (see ``bounds``)."""
        return self.sd_params()

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
