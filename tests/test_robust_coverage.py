"""
Coverage of 95% intervals with few clusters, in CI time: CR2 with
Satterthwaite t against Wald z, on data simulated from a multilevel model.

Design (seeded, fixed before looking at the outcome): m = 10 districts of
3 studies each, a random intercept per district (variance 0.3) and per
study (0.02), known within-study variances between 0.005 and 0.02, and a
district-level binary covariate (3 of 10 districts "treated", effect 0.5).
The model fitted (REML) is the true one.  The variance of the treated
effect rests on the between-district variance estimated from 10 districts:
Wald z ignores that uncertainty and under-covers (about 0.91 in 1,000
data sets with another seed), while CR2 with its Satterthwaite df (median
about 4 here) covers 0.95 within Monte-Carlo error (about 0.96).

600 data sets: the Monte-Carlo standard error of a coverage of 0.95 is
0.0089, so CR2 + t must lie within 3 of them of 0.95 and Wald z more than
2 below.
"""
import warnings

import numpy as np
import pandas as pd
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm
from statsmodels_mixmeta import MixMeta

N_SIM = 600
EFFECT = 0.5


def test_cr2_t_covers_and_wald_z_undercovers_with_ten_clusters():
    rng = np.random.default_rng(20261207)
    district = np.repeat(np.arange(10), 3)
    data = pd.DataFrame({
        "district": district, "study": np.arange(30),
        "treated": np.isin(district, [0, 1, 2]).astype(float),
        "v": rng.uniform(0.005, 0.02, 30)})
    means = 0.2 + EFFECT * data["treated"].to_numpy()
    random = "~ 1 | district/study"
    sims = smm.simulate(means, S=data["v"].to_numpy(),
                        psi=[[[0.3]], [[0.02]]], random=random, data=data,
                        nsim=N_SIM, seed=7)
    design = smf.mixmeta("y ~ treated", data=data.assign(y=means), S="v",
                         random=random).design
    covered_t = covered_z = 0
    df = []
    for y in sims:
        model = MixMeta.from_design(design.with_endog(y), method="reml")
        with warnings.catch_warnings():  # boundary fits are part of it
            warnings.simplefilter("ignore")
            res = model.fit(cov_type="cr2", use_t=True)
        lower, upper = np.asarray(res.conf_int())[1]
        covered_t += lower <= EFFECT <= upper
        estimate = np.asarray(res.params)[1]
        se_model = np.sqrt(res._state.cov_beta[1, 1])
        covered_z += abs(estimate - EFFECT) <= 1.959964 * se_model
        df.append(res.df_inference[1])
    mc_se = np.sqrt(0.95 * 0.05 / N_SIM)
    coverage_t, coverage_z = covered_t / N_SIM, covered_z / N_SIM
    assert abs(coverage_t - 0.95) <= 3 * mc_se, coverage_t
    assert coverage_z <= 0.95 - 2 * mc_se, coverage_z
    # the Satterthwaite df reflect 3 treated districts, far below m - p
    assert 2 < np.median(df) < 6
