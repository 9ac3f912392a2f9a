"""Univariate problems for fit_many's tests: profiles with several maxima,
and random problems stacked for its kernels (shared by test_fit_many,
test_fit_many_compiled, test_many_bounds and test_many_shape)."""
import numpy as np

from statsmodels_mixmeta.kernels import many as many_kernel

# A REML profile with two maxima: a climb from the DerSimonian-Laird
# estimate (or from the single fit's default start) stops at tau2 = 0.0644
# (llf -19.102); the global maximum is at tau2 = 5.325 (llf -17.149)
TWO_MAXIMA_Y = [8.0999, -1.8154, 0.0632, 1.9013, 0.0497, -0.3959, 0.1218,
                -0.0177]
TWO_MAXIMA_V = [2.67862, 1.58444, 3.49977, 1.39365, 0.00123, 0.00661,
                0.00971, 0.0026]
# more profiles with a maximum at or near 0 and a higher one far from it
# (found by a search over random problems; REML)
LOCAL_MAXIMA = [
    ([1.31, 0.0217, 0.1224, 0.0112, -0.067, -0.7079, 0.6674, 4.2422],
     [0.76854, 0.00913, 3.76556, 0.00742, 4.00251, 1.03351, 1.6105,
      0.74067]),
    ([-6.6273, -0.0918, 0.0358, -0.1126, -0.0397, 0.0633],
     [1.92806, 0.67224, 2.48152, 0.53352, 0.0073, 0.00246]),
]


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


def random_design(rng, design, n_studies, n_problems, n_covariates):
    """None (``design="none"``), an intercept and one covariate shared by
    all problems ("shared"), or an intercept and ``n_covariates``
    covariates per problem ``(n_studies, 1 + n_covariates, n_problems)``."""
    if design == "none":
        return None
    if design == "shared":
        return np.column_stack([np.ones(n_studies),
                                rng.normal(size=n_studies)])
    return np.concatenate(
        [np.ones((n_studies, 1, n_problems)),
         rng.normal(size=(n_studies, n_covariates, n_problems))], axis=1)
