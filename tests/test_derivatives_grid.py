"""
Score, observed Hessian and expected information of the profiled (restricted)
log-likelihood, for every Psi structure x {ML, REML} x {one level, two
nested levels, per-group within covariances (``addS``), missing outcomes}.

The four designs:

* ``single``: fibrinogen, four outcomes, one level (every row a group);
* ``missing``: smoking, three outcomes, 31 of 72 values observed;
* ``nested``: simulated (fixed seed), three outcomes, ``x`` as a predictor,
  random intercepts in 6 outer groups of 3 inner groups of 2 rows, the
  same structure at both levels;
* ``addS``: the deep-brain-stimulation long data, four time points as a
  random factor per study, heterogeneous AR(1) within-study matrices.

``fixed`` has no parameters on its own; it is combined with a free
``unstr`` level, at either level, in the nested design and in two-level
versions of the other data: smoking with its studies grouped by the
comparisons they make (outer), the dbs long data with a random intercept
per value inside each study (inner).  That makes 9 x 4 x 2 + 3 x 2 x 2 = 84
configurations.

Every check is at an interior point (:func:`interior`): the model's start
(near the optimum) with every parameter scaled by a random ``exp(0.3 z)``,
and small ones first raised to 0.3 of the largest, so that the score is far
from 0 and no parameter is near 0, where the standard deviations of ``hcs``,
``har1`` and ``cor`` have a kink.

* The score is compared with central differences of ``model.loglike``, and
  the Hessian with central differences of ``model.score``
  (statsmodels' ``approx_fprime``, step ``eps^(1/3) max(|theta|, 0.1)``):
  their error is ``O(h^2 f''') + O(eps |f| / h)``, 1e-10 to 1e-7 of the
  largest entry here (worst measured: score 3.9e-7, missing2-unstr+fixed-
  reml; Hessian 1.6e-7, missing2-unstr+fixed-ml).  ``DIFFERENCES`` (1e-5
  of the largest entry) leaves a margin of 25 and still fails on any wrong
  term, which is of the order of the entries themselves.
* The expected information is compared with the dense formula of
  :mod:`dense` (``tr(A Sigma_s A Sigma_t) / 2``; Sigma is linear in the
  Psi's, so ``Sigma_s`` is the dense random part at ``dPsi/dtheta_s``,
  differenced from ``model.psis``, and rounding stays at Psi's scale):
  ``DENSE_INFO`` (1e-7 of the largest entry; worst measured 1.3e-9,
  addS-cs-ml).
* For REML, the expected information is also the mean of the negative
  observed Hessian over outcomes drawn from the model, and that mean is
  exact with no simulation: at fixed theta the log-likelihood is
  ``c(theta) - y' P(theta) y / 2`` (``P`` annihilates ``X``), so
  ``-H(y) = -H(0) + q(y)`` with ``q`` a quadratic form, and
  ``E q(y) = sum_c q(L_c)`` over the columns of a square root ``L`` of
  Sigma.  ``SIGMA_POINTS`` (1e-9; measured 1.1e-14).  The profiled ML
  Hessian has a different expectation (the fixed effects are estimated),
  so the ML information is checked by the dense formula only.
"""
import zlib

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.numdiff import approx_fprime

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import unvech
from dense import dense_information, dense_marginal
from reference_models import (FIBRINOGEN_S, SMOKING_S, _dbs_long,
                              har1_within_cov)

DIFFERENCES = 1e-5     # of the largest entry, see the module docstring
DENSE_INFO = 1e-7
SIGMA_POINTS = 1e-9
STRUCTURES = ("unstr", "diag", "id", "cs", "hcs", "ar1", "har1", "prop",
              "cor")
METHODS = ("ml", "reml")


def _one_group_per_row(n):
    return np.arange(n)[:, None], [np.ones((n, 1))]


def single():
    data = datasets.load_fibrinogen()
    endog = data[["b2", "b3", "b4", "b5"]].to_numpy()
    labels, designs = _one_group_per_row(len(data))
    return dict(endog=endog, exog=np.ones((len(data), 1)), labels=labels,
                designs=designs,
                within=unvech(data[FIBRINOGEN_S].to_numpy(), 4))


def missing():
    data = datasets.load_smoking()
    endog = data[["yB", "yC", "yD"]].to_numpy()
    labels, designs = _one_group_per_row(len(data))
    return dict(endog=endog, exog=np.ones((len(data), 1)), labels=labels,
                designs=designs,
                within=unvech(data[SMOKING_S].to_numpy(), 3))


def nested():
    rng = np.random.default_rng(20261207)
    outer, inner, rows, k = 6, 3, 2, 3
    g1 = np.repeat(np.arange(outer), inner * rows)
    g2 = np.tile(np.repeat(np.arange(inner), rows), outer)
    n = g1.size
    x = rng.normal(size=n)
    A = 0.3 * rng.normal(size=(n, k, k))
    within = A @ np.swapaxes(A, 1, 2) + 0.05 * np.eye(k)
    effects = (0.5 * rng.normal(size=(outer, k))[g1]
               + 0.3 * rng.normal(size=(outer * inner, k))[g1 * inner + g2])
    noise = np.einsum("nij,nj->ni", np.linalg.cholesky(within),
                      rng.normal(size=(n, k)))
    endog = 1 + 0.5 * x[:, None] + effects + noise
    return dict(endog=endog, exog=np.c_[np.ones(n), x],
                labels=np.c_[g1, g2], designs=[np.ones((n, 1))] * 2,
                within=within)


def adds():
    data = _dbs_long()
    times = np.sort(data["time"].unique())
    onehot = (data["time"].to_numpy()[:, None] == times).astype(float)
    return dict(endog=data[["eff"]].to_numpy(), exog=onehot,
                labels=data[["author"]].to_numpy(), designs=[onehot],
                addS=har1_within_cov(data, "author", "time", "var", 0.97))


DESIGNS = {"single": single, "missing": missing, "nested": nested,
           "addS": adds}


def with_outer_level(raw, labels, design):
    """``raw`` with a grouping level outside its own."""
    return dict(raw, labels=np.c_[labels, raw["labels"]],
                designs=[design] + raw["designs"])


def missing_by_design():
    """smoking, its studies grouped by the comparisons they make."""
    raw = missing()
    labels = datasets.load_smoking()["design"].to_numpy()
    return with_outer_level(raw, labels, np.ones((len(labels), 1)))


def adds_by_row():
    """dbs long, with a random intercept per value inside each study."""
    raw = adds()
    n = len(raw["endog"])
    return dict(raw, labels=np.c_[raw["labels"], np.arange(n)],
                designs=raw["designs"] + [np.ones((n, 1))])


#: where ``fixed`` sits beside a free level
TWO_LEVELS = {"nested": nested, "missing2": missing_by_design,
              "addS2": adds_by_row}


def known_matrix(structure, dim):
    """The ``psi_fix`` of prop (a covariance), cor (a correlation), fixed."""
    if structure == "cor":
        return np.full((dim, dim), 0.4) + 0.6 * np.eye(dim)
    if structure in ("prop", "fixed"):
        return np.full((dim, dim), 0.03) + 0.07 * np.eye(dim)
    return None


def build(raw, bscov, method, endog=None):
    """The model of a design (``endog`` replaces the outcomes)."""
    endog = raw["endog"] if endog is None else endog
    structures = [bscov] * len(raw["designs"]) if isinstance(bscov, str) \
        else list(bscov)
    dims = [endog.shape[1] * z.shape[1] for z in raw["designs"]]
    psi_fix = [known_matrix(s, d) for s, d in zip(structures, dims)]
    if len(psi_fix) == 1 or all(f is None for f in psi_fix):
        psi_fix = psi_fix[0]
    if len(structures) == 1:
        structures = structures[0]
    grouped = raw["labels"].shape[0] != len(np.unique(raw["labels"][:, 0]))
    kw = {}
    if grouped:
        names = [f"g{i + 1}" for i in range(raw["labels"].shape[1])]
        kw["groups"] = pd.DataFrame(raw["labels"], columns=names)
        kw["exog_re"] = raw["designs"]
    if "addS" in raw:
        kw["addS"] = raw["addS"]
    else:
        kw["S"] = raw["within"]
    return smm.MixMeta(endog, raw["exog"], method=method, bscov=structures,
                       psi_fix=psi_fix, **kw)


CONFIGS = [(d, s, m) for d in DESIGNS for s in STRUCTURES for m in METHODS]
CONFIGS += [(d, b, m) for d in TWO_LEVELS
            for b in (("fixed", "unstr"), ("unstr", "fixed"))
            for m in METHODS]


def _config_id(config):
    design, bscov, method = config
    bscov = bscov if isinstance(bscov, str) else "+".join(bscov)
    return f"{design}-{bscov}-{method}"


@pytest.fixture(scope="module", params=CONFIGS, ids=_config_id)
def config(request):
    design, bscov, method = request.param
    raw = {**DESIGNS, **TWO_LEVELS}[design]()
    model = build(raw, bscov, method)
    seed = zlib.crc32(_config_id(request.param).encode())
    rng = np.random.default_rng(seed)
    return raw, bscov, method, model, interior(model.start_params(), rng)


def interior(start, rng):
    """
    A random point around ``start``: every magnitude at least 0.3 of the
    largest, then scaled by ``exp(0.3 z)``, signs kept (so no parameter
    comes near 0, where the standard deviations have their kink).
    """
    size = np.maximum(np.abs(start), 0.3 * max(np.abs(start).max(), 1e-2))
    return np.where(start < 0, -1.0, 1.0) * size * \
        np.exp(0.3 * rng.standard_normal(start.size))


def test_interior_point(config):
    """Away from the kinks at 0, and not at a stationary point."""
    raw, bscov, method, model, theta = config
    assert theta.size > 0 and np.abs(theta).min() > 1e-3
    assert np.abs(model.score(theta)).max() > 0.1


def test_score_is_the_gradient(config):
    raw, bscov, method, model, theta = config
    numeric = approx_fprime(theta, model.loglike, centered=True).ravel()
    np.testing.assert_allclose(model.score(theta), numeric, rtol=0,
                               atol=DIFFERENCES * np.abs(numeric).max())


def test_hessian_is_the_jacobian_of_the_score(config):
    raw, bscov, method, model, theta = config
    numeric = approx_fprime(theta, model.score, centered=True)
    np.testing.assert_allclose(model.hessian(theta), numeric, rtol=0,
                               atol=DIFFERENCES * np.abs(numeric).max())


def _dense_sigma(raw, psis, within=True):
    """The dense Sigma at ``psis``; without ``within``, its random part."""
    known = {}
    if "addS" in raw:
        known["addS"] = {label: np.asarray(m) * within
                         for label, m in raw["addS"].items()}
    else:
        known["within"] = raw["within"] * within
    return dense_marginal(raw["endog"], raw["exog"], raw["labels"],
                         raw["designs"], psis, **known)


def test_information_is_the_dense_formula(config):
    raw, bscov, method, model, theta = config
    y, X, sigma = _dense_sigma(raw, model.psis(theta))
    # Sigma is linear in the Psi's: its derivative is the random part at
    # dPsi/dtheta_s, here differenced from Psi(theta)
    steps = 1e-6 * np.maximum(np.abs(theta), 1.0)
    derivatives = []
    for h, e in zip(steps, np.eye(theta.size)):
        d_psis = [(up - down) / (2 * h) for up, down in
                  zip(model.psis(theta + h * e), model.psis(theta - h * e))]
        derivatives.append(_dense_sigma(raw, d_psis, within=False)[2])
    expected = dense_information(sigma, np.array(derivatives), X,
                                 method == "reml")
    np.testing.assert_allclose(model.information(theta), expected, rtol=0,
                               atol=DENSE_INFO * np.abs(expected).max())


@pytest.mark.parametrize("design", list(DESIGNS))
def test_reml_information_is_the_expected_negative_hessian(design):
    """``E[-H(y)] = -H(0) + sum_c (-H(L_c) + H(0))``, see the docstring."""
    raw = DESIGNS[design]()
    model = build(raw, "unstr", "reml")
    rng = np.random.default_rng(7)
    theta = interior(model.start_params(), rng)
    y, X, sigma = _dense_sigma(raw, model.psis(theta))
    root = np.linalg.cholesky(sigma)
    observed = ~np.isnan(raw["endog"])

    def negative_hessian(values):
        endog = np.full(raw["endog"].shape, np.nan)
        endog[observed] = values            # row-major, as dense_marginal
        return -build(raw, "unstr", "reml", endog).hessian(theta)
    at_zero = negative_hessian(np.zeros(y.size))
    expected = at_zero + sum(negative_hessian(root[:, c]) - at_zero
                             for c in range(y.size))
    information = model.information(theta)
    np.testing.assert_allclose(information, expected, rtol=0,
                               atol=SIGMA_POINTS * np.abs(expected).max())
    # symmetric positive definite, as an expectation of -H must be here
    np.testing.assert_allclose(information, information.T, rtol=1e-13)
    assert np.linalg.eigvalsh(information).min() > 0
