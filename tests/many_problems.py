"""Random univariate problems stacked for fit_many's kernels, shared by the
tests of its certificates (test_many_bounds, test_many_shape)."""
import numpy as np

from statsmodels_mixmeta.kernels import many as many_kernel


def random_stack(reml, design, seed, n, r, sd_range, tau2_values):
    """
    ``r`` problems of ``n`` studies: within-study SDs uniform on
    ``sd_range``, tau2 drawn from ``tau2_values``, mean ``0.5 + 0.8 x``,
    15% of the studies missing; ``design`` "intercept" or a meta-regression
    on ``x``.  Returns the Stack and the problems with two residual
    degrees of freedom or more.
    """
    rng = np.random.default_rng(seed)
    v = rng.uniform(*sd_range, (n, r)) ** 2
    x = rng.standard_normal(n)
    tau2 = rng.choice(tau2_values, r)
    y = 0.5 + 0.8 * x[:, None] + rng.standard_normal((n, r)) * np.sqrt(
        v + tau2)
    y[rng.random((n, r)) < 0.15] = np.nan
    X = np.ones((n, 1)) if design == "intercept" else np.column_stack(
        [np.ones(n), x])
    stack = many_kernel.Stack(y, v, X, reml=reml)
    rows = np.flatnonzero(stack.n_obs >= stack.n_fixed + 2)
    return stack, rows
