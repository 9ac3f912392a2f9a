"""
Cluster-robust ("sandwich") covariances of the fixed effects, CR0, CR1 and
CR2, with the Satterthwaite degrees of freedom of single contrasts and the
Hotelling-T² approximation (HTZ) of joint tests (``cov_type="cr0"``,
``"cr1"``, ``"cr2"``).

Clusters ``j = 1..m`` are the outer groups of the model (each independent
group; with one level, each study), or coarser clusters given as
``cov_kwds={"groups": ...}`` that each hold whole outer groups.  With the
fitted marginal covariance as working model, ``Phi_j = Sigma_j = S_j +
Z_j Psi Z_j'``, weights ``W_j = Phi_j^{-1}``, ``M = (X' W X)^{-1}`` and
residuals ``e_j = y_j - X_j beta``,

.. math::

    V^{CR} = M \\Big(\\sum_j X_j' W_j A_j e_j e_j' A_j W_j X_j\\Big) M
           = \\sum_j P_j' e_j e_j' P_j, \\qquad P_j = A_j W_j X_j M,

with ``A_j = I`` (CR0, Liang & Zeger 1986), ``A_j = (m / (m - 1))^{1/2} I``
(CR1: CR0 times ``m / (m - 1)``, clubSandwich's "CR1"), or the bias-reduced
linearisation of Bell & McCaffrey (2002) in the form of Pustejovsky &
Tipton (2018) (CR2):

.. math::

    A_j = D_j' B_j^{-1/2} D_j, \\qquad
    B_j = D_j (\\Phi_j - X_j M X_j') D_j',

``D_j`` the upper-triangular Cholesky factor (``Phi_j = D_j' D_j``) and
``B^{-1/2}`` the symmetric (pseudo-)inverse square root.  Then ``A_j
(Phi_j - X_j M X_j') A_j = Phi_j``, and since ``Var(e) = Phi - X M X'``
when the working model is right, ``E[V^CR2] = M``: CR2 is exactly unbiased
under the working model and consistent without it.

**Degrees of freedom.**  ``c' V^CR c = sum_j (g_j' y)^2`` with ``g_j =
(I - H)_j' P_j c`` linear in ``y``; under the working model the quadratic
form has mean ``tr(Omega)`` and variance ``2 ||Omega||_F^2`` with
``Omega_ij = g_i' Phi g_j = delta_ij p_i' Phi_i p_i - (X_i'p_i)' M
(X_j'p_j)`` (``p_j = P_j c``; ``(I - H) Phi (I - H)' = Phi - X M X'``), so
the Satterthwaite degrees of freedom of the contrast are (Bell & McCaffrey
2002; Pustejovsky & Tipton 2018, sec. 3.1)

.. math:: \\nu = \\operatorname{tr}(\\Omega)^2 / \\|\\Omega\\|_F^2 .

For ``q`` joint contrasts ``C beta = c`` the Wald statistic ``Q = (C b -
c)' (C V C')^{-1} (C b - c)`` is referred to Hotelling's T² (Pustejovsky &
Tipton 2018, sec. 3.2, "HTZ"): ``C V C'`` is approximated by a Wishart
with ``eta`` degrees of freedom matching its total variance after
standardising ``C`` to ``E[C V C'] = I``,

.. math::

    \\eta = \\frac{q (q + 1)}{\\sum_{s,t} \\sum_{i,j} \\big(
        \\Omega^{st}_{ij} \\Omega^{ts}_{ij} + \\Omega^{ss}_{ij}
        \\Omega^{tt}_{ij}\\big)}, \\qquad
    F = \\frac{\\eta - q + 1}{\\eta q} Q \\sim F(q, \\eta - q + 1),

which for ``q = 1`` is the Satterthwaite t test.  Every sum over pairs of
clusters reduces to ``p x p`` products (``tr(M R M R')`` with ``R = sum_j
u_j u_j'``), so nothing of size ``m x m`` or ``N x N`` is formed; clusters
of equal size are stacked, the square roots come from batched ``eigh``.

These are the df of the cr types with ``use_t`` (clubSandwich's
``coef_test`` and ``Wald_test`` defaults), computed with each type's own
``A_j`` (for CR0 and CR1 they are the same number).  Another
``df_method`` is refused with a cr type: ``"residual"`` (``n - p``)
ignores the clustering, and the df of the model-based methods
(containment, Satterthwaite or Kenward-Roger on Psi) belong to the
model-based covariance, not to the sandwich.  Without ``use_t`` the
references are normal and chi2 with the robust covariance (statsmodels'
convention).  With very few clusters ``eta - q + 1`` can be small or
negative (then the p-value is NaN): the joint test has no information.

Clusters given by ``groups`` must each hold whole outer groups: the outer
groups are what the model treats as independent, and a cluster that split
one would treat correlated values as independent.  ``groups`` is one label
per row the model uses (an array, a Series indexed by the rows' labels, or
the name of a column of the formula's data).

References
----------
Bell, R. M. & McCaffrey, D. F. (2002). Bias reduction in standard errors
for linear regression with multi-stage samples. Survey Methodology 28,
169-181.

Pustejovsky, J. E. & Tipton, E. (2018). Small-sample methods for
cluster-robust variance estimation and hypothesis testing in fixed effects
models. Journal of Business & Economic Statistics 36, 672-683.
"""
import numpy as np
import pandas as pd

from ..kernels.likelihood import marginal_cov
from .inference import CovType, DfRule

#: cov_kwds of the cluster-robust types
CLUSTER_OPTIONS = ("groups",)


# ---------------------------------------------------------------- clusters
def cluster_codes(model, groups):
    """
    Cluster code (0..m-1) of every row the model uses, checked: one label
    per row used (an array or a Series indexed by the row labels, or the
    name of a column of the formula's data), no missing labels, and every
    outer group of the model inside one cluster (the outer groups are the
    units of independence; a cluster may not split one).
    """
    design = model.design
    labels = design.row_labels
    n_rows = len(labels)
    if isinstance(groups, str):
        frame = getattr(model.data, "frame", None)
        if frame is None or groups not in frame:
            raise ValueError(
                f"cov_kwds['groups']={groups!r} is not a column of the "
                "model's data; pass one cluster label per row used")
        groups = frame[groups].loc[labels]
    elif isinstance(groups, pd.Series) and design.labelled:
        missing = pd.Index(labels).difference(groups.index)
        if len(missing):
            raise ValueError(
                f"cov_kwds['groups'] has no label for rows "
                f"{missing[:10].tolist()} used by the model")
        groups = groups.loc[labels]
    values = np.asarray(groups)
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise ValueError(
            f"cov_kwds['groups'] needs one cluster label per row used by "
            f"the model ({n_rows} rows, after rows with missing values are "
            f"dropped); got shape {values.shape}")
    missing = pd.isna(values)
    if missing.any():
        raise ValueError(f"cov_kwds['groups'] is missing for rows "
                         f"{np.asarray(labels)[missing][:10].tolist()}")
    codes = pd.factorize(values, sort=True)[0]
    outer = design.levels.codes[0]
    split = _split_groups(outer, codes, design.levels.n_groups)
    if split.size:
        name = design.levels.names[0] or "row"
        raise ValueError(
            f"cov_kwds['groups'] splits outer groups ({name} "
            f"{design.levels.outer_labels[split][:10].tolist()}) over several "
            "clusters; clusters must hold whole outer groups, the units "
            "that the model treats as independent")
    if codes.max() < 1:
        raise ValueError("cov_kwds['groups'] gives one cluster; a "
                         "cluster-robust covariance needs at least two")
    return codes


def _split_groups(outer, codes, n_groups):
    """Outer groups whose rows carry more than one cluster code."""
    low = np.full(n_groups, codes.max() + 1)
    high = np.full(n_groups, -1)
    np.minimum.at(low, outer, codes)
    np.maximum.at(high, outer, codes)
    return np.flatnonzero(low != high)


def check_cluster(name):
    """The ``check`` of cov type ``name``: options of a cr type."""
    def check(model, cov_kwds):
        unknown = sorted(set(cov_kwds) - set(CLUSTER_OPTIONS))
        if unknown:
            raise ValueError(
                f"cov_type={name!r} takes cov_kwds {list(CLUSTER_OPTIONS)}; "
                f"got unknown {unknown}")
        groups = cov_kwds.get("groups")
        if groups is None:
            if model.n_groups < 2:
                raise ValueError(f"cov_type={name!r} needs at least two "
                                 "independent groups; the model has one")
            return {}
        return {"groups": cluster_codes(model, groups)}
    return check


def check_cluster_df(name):
    """The cr types take their own df with ``use_t``: Satterthwaite for
    t tests, HTZ for joint tests; another ``df_method`` is refused."""
    def check(model, use_t, df_method):
        if df_method is not None:
            raise ValueError(
                f"cov_type={name!r} brings its own degrees of freedom with "
                "use_t=True (Satterthwaite for each contrast, Hotelling T^2 "
                f"for joint tests); df_method={df_method!r} does not combine "
                "with it: leave df_method=None")
    return check


# ----------------------------------------------------------- cluster stacks
def cluster_stacks(results, codes=None):
    """
    The data of every cluster, stacked by cluster size: a list of
    ``(X, e, Phi)`` with ``X`` ``(g, n, p)``, residuals ``e`` ``(g, n)``
    and the fitted marginal covariance ``Phi`` ``(g, n, n)`` of ``g``
    clusters of ``n`` values each (no padding).

    ``codes`` gives each data row's cluster; None clusters on the outer
    groups.  Phi is gathered from the model's batches, which hold each
    outer group's block (clusters hold whole outer groups, so Phi is
    block-diagonal over them).
    """
    model = results.model
    batches = model._batches
    long = batches.long
    value_cluster = long.group if codes is None else codes[long.row]
    n_clusters = value_cluster.max() + 1
    sizes = np.bincount(value_cluster, minlength=n_clusters)
    order = np.argsort(value_cluster, kind="stable")
    starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
    position = np.empty(long.n_values, dtype=np.intp)
    position[order] = np.arange(long.n_values) - starts[value_cluster[order]]
    distinct = np.unique(sizes)
    stack_of = np.searchsorted(distinct, sizes)
    slot = np.empty(n_clusters, dtype=np.intp)
    beta = np.asarray(results.params)
    stacks, phis = [], []
    for k, size in enumerate(distinct):
        members = np.flatnonzero(sizes == size)
        slot[members] = np.arange(members.size)
        index = order[starts[members][:, None] + np.arange(size)]
        X = long.X[index]
        stacks.append((X, long.y[index] - X @ beta))
        phis.append(np.zeros((members.size, size, size)))
    for batch in batches:
        sigma = marginal_cov(batch, results.psis)
        g, a, b = np.nonzero(batch.valid[:, :, None]
                             & batch.valid[:, None, :])
        va, vb = batch.index[g, a], batch.index[g, b]
        cluster = value_cluster[va]
        which = stack_of[cluster]
        for k in np.unique(which):
            sel = which == k
            phis[k][slot[cluster[sel]], position[va[sel]],
                    position[vb[sel]]] = sigma[g[sel], a[sel], b[sel]]
    return [(X, e, phi) for (X, e), phi in zip(stacks, phis)]


def _inverse_sqrt(B, rtol=1e-12):
    """Symmetric (pseudo-)inverse square roots of a stack ``(g, n, n)``."""
    values, vectors = np.linalg.eigh(B)
    cut = rtol * np.maximum(values.max(axis=-1, keepdims=True), 0.0)
    root = np.where(values > cut, 1.0 / np.sqrt(np.where(values > cut,
                                                         values, 1.0)), 0.0)
    return (vectors * root[:, None, :]) @ np.swapaxes(vectors, 1, 2)


def adjusted_weights(X, phi, M, cov_type, n_clusters):
    """
    ``P_j = A_j W_j X_j M`` of a stack of clusters ``(g, n, p)`` (see the
    module docstring for ``A_j`` of each type).
    """
    chol = np.linalg.cholesky(phi)                  # Phi = L L', D = L'
    WX = np.linalg.solve(phi, X)
    P = WX @ M
    if cov_type == "cr1":
        return P * np.sqrt(n_clusters / (n_clusters - 1.0))
    if cov_type == "cr0":
        return P
    # B = D (Phi - X M X') D' with D = L'
    inner = phi - X @ M @ np.swapaxes(X, 1, 2)
    Lt = np.swapaxes(chol, 1, 2)
    B = Lt @ inner @ chol
    A = chol @ _inverse_sqrt(B) @ Lt                # D' B^{-1/2} D
    return A @ P


class ClusterRobust:
    """
    A cluster-robust covariance of ``beta`` and what its degrees of freedom
    need, per cluster: ``G_j = P_j' Phi_j P_j`` and ``U_j = X_j' P_j``
    (each ``(m, p, p)``), with ``M = (X' W X)^{-1}``.
    """

    def __init__(self, results, cov_type, codes=None):
        M = np.asarray(results._state.cov_beta)
        stacks = cluster_stacks(results, codes)
        n_clusters = sum(X.shape[0] for X, _, _ in stacks)
        cov = np.zeros_like(M)
        G, U = [], []
        for X, e, phi in stacks:
            P = adjusted_weights(X, phi, M, cov_type, n_clusters)
            scores = np.einsum("gnp,gn->gp", P, e)
            cov += scores.T @ scores
            G.append(np.swapaxes(P, 1, 2) @ phi @ P)
            U.append(np.swapaxes(X, 1, 2) @ P)
        self.cov = (cov + cov.T) / 2
        self.M = M
        self.G = np.concatenate(G)
        self.U = np.concatenate(U)
        self.n_clusters = n_clusters

    def moments(self, C):
        """
        ``E`` ``(q, q)``, the expectation of ``C V C'`` under the working
        model, and ``sums[s, t]`` ``= sum_ij Omega^st_ij Omega^ts_ij +
        Omega^ss_ij Omega^tt_ij`` (module docstring) for the rows of ``C``.
        """
        M = self.M
        d = np.einsum("sa,jab,tb->jst", C, self.G, C,     # p_s' Phi p_t
                      optimize=True)
        u = self.U @ C.T                                  # X_j' p_js
        k = np.swapaxes(u, 1, 2) @ M @ u                  # u_s' M u_t
        E = (d - k).sum(axis=0)
        dd = np.swapaxes(d, 1, 2)
        diag_d = np.einsum("jss->js", d)
        diag_k = np.einsum("jss->js", k)
        m, p, q = u.shape
        flat = u.reshape(m, p * q)
        R = (flat.T @ flat).reshape(p, q, p, q)           # sum_j u_s u_t'
        MR = np.einsum("ab,bsct->stac", M, R)
        cross = (np.einsum("stab,stba->st", MR, MR)       # <K^st, K^ts>
                 + np.einsum("stab,tsba->st", MR, MR))    # <K^ss, K^tt>
        sums = ((d * dd).sum(axis=0)
                - (d * np.swapaxes(k, 1, 2)).sum(axis=0)
                - (k * dd).sum(axis=0)
                + np.einsum("js,jt->st", diag_d, diag_d)
                - np.einsum("js,jt->st", diag_d, diag_k)
                - np.einsum("js,jt->st", diag_k, diag_d)
                + cross)
        return E, sums

    def satterthwaite(self, L):
        """``nu = tr(Omega)^2 / ||Omega||_F^2`` of each row of ``L``."""
        L = np.atleast_2d(L)
        out = np.empty(L.shape[0])
        for r, row in enumerate(L):   # a few rows; each moment is p x p
            E, sums = self.moments(row[None, :])
            out[r] = 2 * E[0, 0] ** 2 / sums[0, 0]
        return out

    def hotelling(self, L):
        """``eta`` of the joint contrasts ``L`` (Wishart approximation of
        ``L V L'`` after standardising to ``E[L V L'] = I``)."""
        L = np.atleast_2d(L)
        E, _ = self.moments(L)
        values, vectors = np.linalg.eigh((E + E.T) / 2)
        root = vectors @ np.diag(1 / np.sqrt(values)) @ vectors.T
        q = L.shape[0]
        _, sums = self.moments(root @ L)
        return q * (q + 1) / sums.sum()


class ClusterDfRule(DfRule):
    """
    Degrees of freedom of a cr covariance: Satterthwaite per contrast, and
    the HTZ test for joint hypotheses, ``F = (eta - q + 1) / (eta q) Q`` on
    ``(q, eta - q + 1)``.
    """

    def __init__(self, robust, cov_type):
        super().__init__(np.nan, name=f"satterthwaite ({cov_type.upper()})")
        self.robust = robust

    def t_df(self, L):
        return self.robust.satterthwaite(L)

    def f_test(self, L, q, beta, cov):
        L = np.atleast_2d(L)
        diff = L @ beta - q
        n_rows = L.shape[0]
        wald = float(diff @ np.linalg.solve(L @ cov @ L.T, diff))
        eta = self.robust.hotelling(L)
        df_denom = eta - n_rows + 1
        return wald * df_denom / (eta * n_rows), n_rows, df_denom


def build_cluster(name):
    """The ``build`` of cov type ``name``: ``(cov, rule)``."""
    def build(results, cov_kwds):
        robust = ClusterRobust(results, name, cov_kwds.get("groups"))
        return robust.cov, ClusterDfRule(robust, name)
    return build


_DESCRIPTIONS = {
    "cr0": "CR0: cluster-robust sandwich without small-sample correction",
    "cr1": "CR1: cluster-robust sandwich times m / (m - 1)",
    "cr2": ("CR2: bias-reduced cluster-robust sandwich (Bell & McCaffrey "
            "2002; Pustejovsky & Tipton 2018), the fitted marginal "
            "covariance as working model"),
}


def cov_types():
    """``{name: CovType}`` of the cluster-robust types."""
    return {name: CovType(
        description + "; clusters: outer groups or cov_kwds['groups']; "
        "t tests on Satterthwaite df, joint tests HTZ",
        check_cluster(name), build_cluster(name), check_cluster_df(name))
        for name, description in _DESCRIPTIONS.items()}
