"""Fixtures shared by the test modules."""
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
