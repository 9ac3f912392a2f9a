r"""
Derivatives of the marginal covariance with respect to the covariance
parameters, and the matrices the Satterthwaite and Kenward-Roger degrees
of freedom are made of.

With ``Sigma_i = S_i + sum_l Z~_il (I (x) Psi_l) Z~_il'`` and covariance
parameters ``phi``, write ``Sigma_s = dSigma / dphi_s`` and
``Sigma_st = d2 Sigma / dphi_s dphi_t``.  For the fixed effects
(Kenward & Roger 1997, section 2)

.. math::

    \Phi = (X'\Sigma^{-1}X)^{-1}, \qquad
    P_s = -X'\Sigma^{-1}\Sigma_s\Sigma^{-1}X, \qquad
    Q_{st} = X'\Sigma^{-1}\Sigma_s\Sigma^{-1}\Sigma_t\Sigma^{-1}X,

    R_{st} = X'\Sigma^{-1}\Sigma_{st}\Sigma^{-1}X, \qquad
    W = \mathcal{I}(\hat\phi)^{-1},

``I`` the expected (restricted, for REML; else ML) information of ``phi``
and ``d Phi / d phi_s = -Phi P_s Phi``.

Which parameters.  The first-order results (Satterthwaite's df, the
delta method) do not depend on how Psi is parameterised; Kenward and
Roger's bias correction does, through ``R`` and the bias of ``phi``, and is
meant for parameters in which ``Sigma`` is linear (``R = 0``, as in
pbkrtest's variance-component form).  So each level's Psi is described
by parameters on which it is linear wherever the structure's family is a
linear space:

* ``id``, ``prop``, any ``1 x 1`` Psi: the variance (scale) itself;
* ``diag``: the variances; ``unstr``: every variance and covariance;
* ``cs``: the common variance and the common covariance
  (``Psi = v I + c (11' - I)``).

The remaining families (``hcs``, ``ar1``, ``har1``, ``cor``) are not linear
spaces; they keep the fit's own parameters ``theta`` with ``R`` from the
structures' second derivatives (Kenward & Roger's general formula).
``fixed`` levels have none.

Computation.  On the fit's whitened batches (``Y = L^{-1} Z~``,
``X~ = L^{-1} X``, ``Sigma = L L'``), with ``K = Y' X~`` per group,
``P_s = -sum K'(I (x) D_s) K`` and ``Q_st = sum G_s' G_t`` with
``G_s = Y (I (x) D_s) K``, ``D_s = dPsi / dphi_s``: one batched product
per batch for all parameters, no loop over groups.  The matrices are in
the kernel's conditioning basis of the fixed effects (``X B``); the
results that use them map back (Kenward-Roger is equivariant under an
invertible linear map of ``beta``).

References
----------
Kenward MG, Roger JH (1997). Small sample inference for fixed effects from
restricted maximum likelihood. Biometrics 53, 983-997.
"""
import numpy as np

from ..kernels.likelihood import _apply_blocks

#: families whose Psi is a linear space: parameters that are linear
LINEAR_FAMILIES = ("id", "diag", "unstr", "cs", "prop")


def linear_basis(structure):
    """
    Matrices ``G_k`` with ``Psi = sum_k phi_k G_k`` for a structure whose
    family is a linear space, with names; None for the other families.

    Returns
    -------
    (ndarray ``(T, r, r)``, list of str) or None
    """
    dim = structure.dim
    if structure.n_params == 0:
        return np.zeros((0, dim, dim)), []
    name = structure.name
    if name == "prop":
        return np.asarray(structure.psi_fix, dtype=float)[None], ["scale"]
    if name == "id" or structure.square_scale is not None:
        return np.eye(dim)[None], ["var"]
    if name == "diag":
        out = np.zeros((dim, dim, dim))
        out[np.arange(dim), np.arange(dim), np.arange(dim)] = 1.0
        return out, [f"var[{i}]" for i in range(dim)]
    if name == "unstr":
        mats, names = [], []
        for j in range(dim):
            for i in range(j, dim):
                m = np.zeros((dim, dim))
                m[i, j] = m[j, i] = 1.0
                mats.append(m)
                names.append(f"var[{i}]" if i == j else f"cov[{i},{j}]")
        return np.array(mats), names
    if name == "cs":
        ones = np.ones((dim, dim))
        return (np.array([np.eye(dim), ones - np.eye(dim)]),
                ["var", "cov"])
    return None


class SigmaDerivatives:
    """
    ``P``, ``Q``, ``R``, the information and ``W`` of a fit's covariance
    parameters (see the module docstring), computed once and kept.

    Parameters
    ----------
    results : MixMetaResults
        A fit with ``theta`` (ML or REML).

    Attributes
    ----------
    cov_work : ndarray ``(p, p)``
        ``Phi`` in the kernel's basis of the fixed effects.
    basis : ndarray ``(p, p)`` or None
        ``beta = basis @ beta_work``.
    P : ndarray ``(T, p, p)``
    information, W : ndarray ``(T, T)``
        Expected information of ``phi`` and its (pseudo-)inverse.
    linear : bool
        Every level is parameterised linearly (``R = 0``).
    """

    def __init__(self, results):
        model = results.model
        state = results._batched_state
        self._state = state
        self.basis = model.design.basis
        self.cov_work = state.cov_work
        theta = results.theta
        derivs, curv = [], []
        for structure, part in zip(model.random.structures,
                                   model.random.split(theta)):
            lin = linear_basis(structure)
            if lin is not None:
                derivs.append(lin[0])
                curv.append(None)
            else:
                derivs.append(np.asarray(structure.jacobian(part)))
                curv.append(np.asarray(structure.curvature(part)))
        self.derivatives = derivs
        self._curvatures = curv
        self.linear = all(c is None for c in curv)
        self.n_params = sum(d.shape[0] for d in derivs)
        kernel = model.profiled_likelihood(batched=True)
        if self.n_params:
            info = kernel.information(state, derivs)
            self.information = (info + info.T) / 2
        else:
            self.information = np.zeros((0, 0))
        self.W = np.linalg.pinv(self.information, hermitian=True)
        self.P, self.Q, self.R = self._moments()

    def _moments(self):
        """``(P, Q, R)`` summed over the batches."""
        T, p = self.n_params, self.cov_work.shape[0]
        P = np.zeros((T, p, p))
        Q = np.zeros((T, T, p, p))
        R = np.zeros((T, T, p, p))
        if T == 0:
            return P, Q, R
        for wb in self._state.whitened:
            Xw = wb.X
            G_parts, start = [], 0
            for lev, (Y, D) in enumerate(zip(wb.Z, self.derivatives)):
                n_lev = D.shape[0]
                if n_lev == 0:
                    continue
                sl = slice(start, start + n_lev)
                start += n_lev
                Kt = np.swapaxes(Xw, 1, 2) @ Y              # (g, p, C r)
                KD = _apply_blocks(D, Kt)                   # (T_l, g, p, C r)
                P[sl] -= np.einsum("tgpc,gqc->tpq", KD, Kt)
                G_parts.append(Y[None] @ np.swapaxes(KD, 2, 3))
                curv = self._curvatures[lev]
                if curv is not None:
                    r = D.shape[-1]
                    KDD = _apply_blocks(curv.reshape(-1, r, r), Kt)
                    R[sl, sl] += np.einsum("tgpc,gqc->tpq", KDD, Kt
                                           ).reshape(n_lev, n_lev, p, p)
            G = np.concatenate(G_parts)                     # (T, g, n, p)
            Q += np.einsum("sgnp,tgnq->stpq", G, G)
        return P, Q, R

    # ---------------------------------------------------- in beta's basis
    def to_beta(self, matrix):
        """A covariance in the work basis mapped to ``beta``'s."""
        if self.basis is None:
            return matrix
        return self.basis @ matrix @ self.basis.T

    def contrast_to_work(self, L):
        """Rows of ``L`` (on ``beta``) as rows on the work coefficients."""
        L = np.atleast_2d(np.asarray(L, dtype=float))
        return L if self.basis is None else L @ self.basis

    def contrast_gradients(self, L, cov_work=None):
        """
        ``g[j, s] = d (l_j' Phi l_j) / d phi_s = -l_j' Phi P_s Phi l_j``
        for each row ``l_j`` of ``L``, ``(J, T)``.
        """
        Lw = self.contrast_to_work(L)
        phi = self.cov_work if cov_work is None else cov_work
        A = Lw @ phi                                        # (J, p)
        return -np.einsum("jp,tpq,jq->jt", A, self.P, A)
