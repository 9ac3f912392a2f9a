"""Fixtures shared by the test modules."""
import warnings
from contextlib import contextmanager

import pytest
import statsmodels.formula

ENGINES = ("patsy", "formulaic")


@contextmanager
def formula_engine(name):
    """Use formula engine ``name`` inside the block, then restore the old one."""
    options = statsmodels.formula.options
    previous = options.formula_engine
    options.formula_engine = name
    try:
        yield
    finally:
        options.formula_engine = previous


@pytest.fixture(params=ENGINES)
def engine(request):
    """Run the test under each of statsmodels' formula engines."""
    with formula_engine(request.param):
        yield request.param


@pytest.fixture(scope="session")
def dask_client():
    """A real Dask cluster of two single-threaded worker processes, started
    once for the session (the CI command installs the ``dask`` extra)."""
    import distributed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True,
            dashboard_address=None)
        client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
