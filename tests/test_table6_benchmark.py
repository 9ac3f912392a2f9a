"""
``benchmarks/table6.py`` (the reference paper's Table 6 simulation through
``fit_many(groups=...)``): its quick form runs, draws what it says and
fits it as single fits do, and the stored full study has the same form.
Timings are not tested.
"""
import json
import pathlib
import sys
import warnings

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import statsmodels_mixmeta as smm  # noqa: E402
from benchmarks import table6 as study  # noqa: E402

STORED = ROOT / "benchmarks" / "results" / "table6.json"


def test_draws_are_the_described_design():
    rng = np.random.default_rng(0)
    scenario = {"m": 10, "rho_b": 0.8, "rho_w": 0.8}
    S, groups = study.design(scenario, rng)
    sd = np.sqrt(np.einsum("naa->na", S))
    assert S.shape == (100, 3, 3) and groups.shape == (100, 2)
    assert sd.min() >= 0.5 and sd.max() <= 2.0
    np.testing.assert_allclose(S[:, 0, 1] / (sd[:, 0] * sd[:, 1]), 0.8)
    assert (np.bincount(groups[:, 0]) == 10).all()
    # the covariance of many draws is the marginal covariance of the model
    y = study.draw(S[:20], groups[:20], study.cs(0.8), 20000, rng)
    first, second, other = y[0, 0], y[1, 0], y[15, 0]
    assert abs(np.var(first) - (2 + S[0, 0, 0])) < 0.1
    assert abs(np.cov(first, second)[0, 1] - 1.0) < 0.06    # same outer
    assert abs(np.cov(first, other)[0, 1]) < 0.06           # other outer


def test_quick_run_matches_single_fits_and_stored_form():
    report = study.run(n_sim=6, verbose=False)
    rows = report["scenarios"]
    assert len(rows) == 8 and report["n_fits"] == 48
    assert [(r["m"], r["rho_b"], r["rho_w"]) for r in rows] == [
        (s["m"], s["rho_b"], s["rho_w"]) for s in study.SCENARIOS]
    # scenario 1 refitted by single fits on the same draws
    rng = np.random.default_rng(study.SEED + 1)
    S, groups = study.design(study.SCENARIOS[0], rng)
    y = study.draw(S, groups, study.cs(0.0), 6, rng)
    b1, se1 = [], []
    for j in range(6):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = smm.MixMeta(y[:, :, j], S=S, groups=groups,
                              bscov=["cs", "cs"]).fit()
        b1.append(fit.params[0])
        se1.append(fit.bse[0])
    b1, se1 = np.array(b1), np.array(se1)
    np.testing.assert_allclose(rows[0]["beta1_bias"], b1.mean(), rtol=1e-6)
    np.testing.assert_allclose(rows[0]["beta1_rmse"],
                               np.sqrt(np.mean(b1 ** 2)), rtol=1e-6)
    assert rows[0]["beta1_coverage"] == np.mean(np.abs(b1) <= study.Z * se1)
    stored = json.loads(STORED.read_text())
    assert set(stored) == set(report)
    assert set(stored["scenarios"][0]) == set(rows[0])
    assert stored["design"] == {**report["design"],
                                "n_sim": stored["design"]["n_sim"]}


def test_stored_full_study():
    stored = json.loads(STORED.read_text())
    assert stored["design"]["n_sim"] == 10000
    assert stored["n_fits"] == 80000
    for row in stored["scenarios"]:
        assert row["converged"] == 1.0
        # Wald coverage near 0.95 (the paper: 0.928-0.940 at m = 10)
        assert 0.91 < row["beta1_coverage"] < 0.97
        assert abs(row["beta1_bias"]) < 4 * row["beta1_bias_mcse"] + 0.01
        assert row["beta1_coverage_mcse"] < 0.003
    by_m = {m: [r["beta1_rmse"] for r in stored["scenarios"] if r["m"] == m]
            for m in (10, 50)}
    assert max(by_m[50]) < min(by_m[10])
