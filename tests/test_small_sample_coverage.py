"""
Coverage of 95% confidence intervals with few groups, in CI time: the
design of the reference paper's Table 6 made small (k = 3 outcomes, two
nested levels with compound-symmetry Psi with between-outcome correlation
0.8, m = 10 outer groups of 3 inner
groups), 300 seeded data sets drawn with ``smm.simulate`` and refitted by
REML.  The intervals of the three intercepts are pooled (900 intervals;
the Monte-Carlo standard error is computed from the per-data-set hit
rates, which allows for their correlation).

Wald z intervals ignore the uncertainty in Psi and under-cover; Kenward-
Roger's (adjusted covariance, median df about 13 here) cover within Monte-Carlo
error of 0.95.  The full study, with 2,000 data sets per scenario, is
``benchmarks/small_sample_coverage.py``.
"""
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf
from scipy import stats

import statsmodels_mixmeta as smm
from statsmodels_mixmeta.model import MixMeta

N_OUTER, N_INNER, K = 10, 3, 3
TAU2 = (0.05, 0.03)       # outer and inner variances of Psi
N_SIM = 300


def table6_design(rho=0.0, seed=0):
    """The design, its data frame, the S columns and the true Psi's."""
    rng = np.random.default_rng(seed)
    n = N_OUTER * N_INNER
    data = pd.DataFrame({"outer": np.repeat(np.arange(N_OUTER), N_INNER),
                         "inner": np.tile(np.arange(N_INNER), N_OUTER)})
    v = rng.uniform(0.01, 0.05, size=(n, K))
    s_cols = []
    for a in range(K):
        for b in range(a, K):
            data[f"s{a}{b}"] = (v[:, a] if a == b
                                else 0.5 * np.sqrt(v[:, a] * v[:, b]))
            s_cols.append(f"s{a}{b}")
    for a in range(K):
        data[f"y{a}"] = 0.0
    model = smf.mixmeta(" + ".join(f"y{a}" for a in range(K)) + " ~ 1",
                        data=data, S=s_cols, random="~ 1 | outer/inner",
                        bscov="cs")
    cs = (1 - rho) * np.eye(K) + rho * np.ones((K, K))
    return model, data, s_cols, [TAU2[0] * cs, TAU2[1] * cs]


def test_kenward_roger_covers_where_wald_z_does_not():
    model, data, s_cols, psi = table6_design(rho=0.8)
    draws = smm.simulate(np.zeros((len(data), K)), S=data[s_cols].to_numpy(),
                         psi=psi, random="~ 1 | outer/inner", data=data,
                         nsim=N_SIM, seed=20261207)
    z_hits, kr_hits, kr_df = [], [], []
    z = stats.norm.isf(0.025)
    for y in draws:
        fit = MixMeta.from_design(model.design.with_endog(y), bscov="cs")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")      # boundary fits are kept
            res = fit.fit(use_t=True, df_method="kenward-roger")
        beta = np.asarray(res.params)            # the truth is 0
        wald_se = np.sqrt(np.diag(res._results._state.cov_beta))
        z_hits.append(np.abs(beta) / wald_se < z)
        lower, upper = np.asarray(res.conf_int()).T
        kr_hits.append((lower < 0) & (0 < upper))
        kr_df.append(res.df_inference)
    z_rate, kr_rate = (np.mean(h, axis=1) for h in (z_hits, kr_hits))
    mc_se = np.std(kr_rate, ddof=1) / np.sqrt(N_SIM)
    assert 0.005 < mc_se < 0.012
    # Kenward-Roger within 2.5 Monte-Carlo standard errors of 0.95
    assert abs(kr_rate.mean() - 0.95) < 2.5 * mc_se, kr_rate.mean()
    # Wald z under-covers: clearly below 0.95 and below Kenward-Roger
    # (with this seed: z 0.920, Kenward-Roger 0.942, MC se 0.010)
    assert z_rate.mean() < 0.95 - 2 * mc_se, z_rate.mean()
    assert kr_rate.mean() - z_rate.mean() > mc_se
    # the adjustment works mostly through small df
    assert 5 < np.median(kr_df) < 20
