"""
What "agrees with R" means, shared by the reference-case tests.

The rules are written out in tests/README.md, each with the function that
applies it here: log-likelihood within 1e-6 absolute and never below R's
(:func:`assert_loglike`, which also evaluates our objective at R's own Psi
and requires R's log-likelihood); coefficients and standard errors within
1e-4 relative or 1e-6 absolute (``COEF_TOL``); Psi within 1e-3 relative or
1e-5 absolute (``PSI_TOL``); deterministic estimators (fixed, mm, vc) to
1e-8 (:func:`assert_estimates`).  Where R's default tolerance stops short of
the optimum, matching R's refit to 1e-14 (``tight``), or beating both, is
right (:func:`assert_estimates`).  :func:`results_at_psi` evaluates a model
at a given Psi (R's), for the closed-form checks of
tests/test_reference_at_psi.py.
"""
import numpy as np

from reference_models import r_style_names
from statsmodels_mixmeta.results import MixMetaResults, MixMetaResultsWrapper


class FitCache:
    """Fit each named reference model once per test module."""

    def __init__(self, builders):
        self.builders = builders
        self.fits = {}

    def __call__(self, name):
        if name not in self.fits:
            self.fits[name] = self.builders[name]().fit()
        return self.fits[name]

DETERMINISTIC = ("fixed", "mm", "vc")
COEF_TOL = dict(rtol=1e-4, atol=1e-6)
PSI_TOL = dict(rtol=1e-3, atol=1e-5)


def results_at_psi(model, psis):
    """
    Results of ``model`` with the Psi's fixed at ``psis`` (one matrix per
    level, outer to inner; ``()`` for a fixed-effects model): the GLS fit
    of the model's own objective at that Psi, wrapped as a fit would be.

    This is the one place where the tests build results from the package's
    internals (the objective's GLS state and the results class), so that a
    change of those internals is mended here once.  ``theta`` is NaN:
    R reports Psi, not our structure parameters, and nothing computed from
    a GLS state needs them.
    """
    state = model.profiled_likelihood().evaluate(tuple(psis))
    theta = np.full(model.k_psi, np.nan)
    return MixMetaResultsWrapper(
        MixMetaResults(model, state, theta, True, {"at_psi": True}))


def by_r_name(res, values):
    """Our per-coefficient values keyed by R's spelling of the names."""
    names = [n.replace(" ", "") for n in
             r_style_names(list(res.model.data.param_names))]
    return dict(zip(names, np.asarray(values)))


def psi_as_dict(psi, level_names):
    """Psi as {level: array}, for one level or several."""
    if isinstance(psi, dict):
        return {k: np.asarray(getattr(v, "values", v)) for k, v in psi.items()}
    return {level_names[0]: np.asarray(getattr(psi, "values", psi))}


def reference_psis(model, ref_psi):
    """R's Psi of every level of ``model``, in level order."""
    if ref_psi is None or model.random.n_levels == 0:
        return ()
    if isinstance(ref_psi, dict):
        return tuple(np.atleast_2d(ref_psi[name])
                     for name in model.random.level_names)
    return (np.atleast_2d(ref_psi),)


def estimates_agree(res, ref, coef_names):
    """Coefficients, standard errors and Psi at the tolerances above."""
    ours = by_r_name(res, res.params)
    ours_se = by_r_name(res, res.bse)
    ref_se = np.sqrt(np.diag(ref.vcov))
    coef_ok = all(np.isclose(ours[n.replace(" ", "")], v, **COEF_TOL)
                  and np.isclose(ours_se[n.replace(" ", "")], s, **COEF_TOL)
                  for n, v, s in zip(coef_names, ref.coef, ref_se))
    if ref.psi is None:
        return coef_ok
    levels = res.model.random.level_names or [None]
    ours_psi = psi_as_dict(res.psi, levels)
    ref_psi = psi_as_dict(ref.psi, levels)
    psi_ok = all(np.allclose(ours_psi[key], ref_psi[key], **PSI_TOL)
                 for key in ref_psi)
    return coef_ok and psi_ok


def assert_estimates(res, ref, name):
    """
    Agreement with R's default answer, else with its tight refit (and then
    our log-likelihood beats R's default), else -- where R's tight refit
    itself did not converge -- a higher optimum than both.
    """
    if res.method in DETERMINISTIC:
        ours = by_r_name(res, res.params)
        ours_se = by_r_name(res, res.bse)
        for n, v, s in zip(ref.coef_names, ref.coef,
                           np.sqrt(np.diag(ref.vcov))):
            n = n.replace(" ", "")
            assert np.isclose(ours[n], v, rtol=1e-8, atol=1e-12), n
            assert np.isclose(ours_se[n], s, rtol=1e-8, atol=1e-12), n
        return "R"
    if estimates_agree(res, ref, ref.coef_names):
        return "R"
    if estimates_agree(res, ref.tight, ref.coef_names):
        assert res.llf > ref.logLik, (
            f"{name}: matches R's tight refit, so it must beat R's default")
        return "tight"
    assert res.llf > max(ref.logLik, ref.tight.logLik) + 1e-6, (
        f"{name}: matches neither R's answer nor its tight refit, and "
        "does not reach a higher optimum")
    return "better"


def assert_loglike(res, ref):
    """
    Our objective is R's (evaluated at R's own Psi it gives R's
    log-likelihood), our optimum is never below R's best, and AIC/BIC
    follow from the log-likelihood as R's do.
    """
    best = max(ref.logLik, ref.tight.logLik if ref.tight else -np.inf)
    assert res.llf >= best - 1e-6
    lik = res.model.profiled_likelihood()
    at_r = lik.loglike(reference_psis(res.model, ref.psi))
    assert abs(at_r - ref.logLik) <= 1e-6
    # AIC and BIC count parameters and observations as R does
    assert res.df_loglike == ref.df_logLik
    shift = -2 * (res.llf - ref.logLik)
    assert abs(res.aic - (ref.AIC + shift)) <= 1e-9
    assert abs(res.bic - (ref.BIC + shift)) <= 1e-9
