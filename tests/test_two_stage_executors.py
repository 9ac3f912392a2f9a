"""
The first stage on every executor: serially, on thread and process pools
and on a real Dask ``LocalCluster`` of two workers, with identical numbers
(failures included).
"""
import concurrent.futures as cf

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import statsmodels.formula.api as smf

import statsmodels_mixmeta as smm

# statsmodels' own warnings of the failing sites (rank-deficient design, no
# convergence), raised in the workers
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning:statsmodels"),
              pytest.mark.filterwarnings(
                  "ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning"),
              pytest.mark.filterwarnings(
                  "ignore::statsmodels.tools.sm_exceptions.SingularMatrixWarning")]


def sites(n_sites=24, n=60, seed=7):
    rng = np.random.default_rng(seed)
    site = np.repeat([f"site{i:02d}" for i in range(n_sites)], n)
    x = rng.normal(size=n_sites * n)
    treat = rng.integers(0, 2, n_sites * n)
    effect = 0.2 + rng.normal(0, 0.1, n_sites)
    mu = np.exp(0.5 + 0.3 * x + np.repeat(effect, n) * treat)
    data = pd.DataFrame({"site": site, "x": x, "treat": treat,
                         "deaths": rng.poisson(mu),
                         "lat": np.repeat(rng.uniform(20, 60, n_sites), n)})
    data.loc[data["site"] == "site05", "treat"] = 1   # treat not identified
    return data


def fit_poisson(frame):
    """A picklable first stage; site03 raises, site09 stops after one step."""
    label = frame["site"].iloc[0]
    if label == "site03":
        raise RuntimeError("no data for this site")
    # (no warnings.catch_warnings here: it is not thread-safe)
    return smf.glm("deaths ~ x + treat", frame,
                   family=sm.families.Poisson()).fit(
        maxiter=1 if label == "site09" else 100)


def first_stage(executor):
    with pytest.warns(smm.FirstStageWarning, match="2 of 24 groups left out "
                      "and 1 kept"):
        return smm.two_stage(sites(), "site", fit_poisson, ["x", "treat"],
                             covariates=["lat"], executor=executor)


@pytest.fixture(scope="module")
def serial():
    return first_stage(None)


def same(res, ref):
    assert list(res.groups) == list(ref.groups)
    np.testing.assert_array_equal(res.y.to_numpy(), ref.y.to_numpy())
    np.testing.assert_array_equal(res.S, ref.S)
    pd.testing.assert_frame_equal(res.failures, ref.failures)
    pd.testing.assert_frame_equal(res.table, ref.table)


def test_serial_reference(serial):
    assert len(serial.groups) == 22
    assert serial.failures["group"].tolist() == ["site03", "site05",
                                                 "site09"]
    assert serial.failures["reason"].tolist() == [
        "raised: RuntimeError: no data for this site",
        "not identified: treat (rank-deficient design)", "did not converge"]
    frame = sites()
    ref = smf.glm("deaths ~ x + treat", frame[frame["site"] == "site00"],
                  family=sm.families.Poisson()).fit()
    np.testing.assert_allclose(serial.y.loc["site00"], ref.params[["x", "treat"]],
                               rtol=1e-12)


def test_thread_pool(serial):
    with cf.ThreadPoolExecutor(max_workers=3) as pool:
        same(first_stage(pool), serial)


def test_process_pool(serial):
    with cf.ProcessPoolExecutor(max_workers=2) as pool:
        same(first_stage(pool), serial)


def test_dask_client_and_current_client(serial, dask_client):
    on_cluster = first_stage(dask_client)
    same(on_cluster, serial)
    np.testing.assert_array_equal(on_cluster.fit().params,
                                  serial.fit().params)
    with dask_client.as_current():
        same(first_stage("dask"), serial)


def test_a_string_other_than_dask_is_refused():
    with pytest.raises(ValueError, match="the only string accepted is 'dask'"):
        smm.two_stage(sites(), "site", fit_poisson, ["x"], executor="spark")
