"""Data for the benchmark workloads: the package's example sets and seeded simulations.

Every function here is deterministic (fixed seeds), so a peer timed in a child
process rebuilds exactly the data that the parent timed our package on.

Each workload's data come as a :class:`Problem`: the data frame and formula for
the formula interface, the arrays for the array interface, and the grouping
columns of a multilevel model.

Simulated designs
-----------------
``metareg``
    Univariate meta-regression of ``n`` studies:
    ``x1 ~ N(0, 1)``, ``x2 ~ U(0, 1)``, ``x3 ~ Bernoulli(0.3)``,
    within-study variance ``v ~ Gamma(shape 2, rate 20)``,
    ``y = 0.1 + 0.2 x1 - 0.1 x2 + 0.05 x3 + N(0, 0.04) + N(0, v)``
    (0.04 and ``v`` are variances).
``four_level``
    126 articles holding 310 experiments, 582 samples and 1,653 effects
    (articles of 2 to 48 effects, median 9), within variances
    ``~ U(0.0002, 0.002)``, random intercepts with variances 0.0225 (article),
    0.0092 (experiment), 0.0011 (sample) and 0.0218 (effect), mean 0.1.
``nested_cs``
    The simulation design of Sera et al. (2019): k = 3 outcomes, ``m`` outer
    groups of 10 inner groups (one row each), compound-symmetry Psi at both
    levels (variance 1, correlation 0.8), within-study variances
    ``~ U(0.1, 2)`` with within-study correlation 0.8, outcome means 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from statsmodels_mixmeta import datasets

METAREG_SEED = 20240601
FOUR_LEVEL_SEED = 20240602
NESTED_CS_SEED = 20240603


@dataclass(frozen=True)
class Problem:
    """One workload's data in the forms that our interfaces and the peers take.

    ``endog`` is (n,) for one outcome or (n, k); ``within_cov`` is (n,)
    variances or (n, k, k) matrices, NaN where an outcome is missing;
    ``exog`` holds the intercept column. ``groups`` lists the grouping columns
    of ``frame`` from the outermost level inwards (empty: one level, the rows).
    """

    name: str
    frame: pd.DataFrame
    formula: str
    S: str | list[str]
    endog: np.ndarray
    exog: np.ndarray
    within_cov: np.ndarray
    method: str = "reml"
    bscov: str | list[str] = "unstr"
    groups: list[str] = field(default_factory=list)

    @property
    def n_outcomes(self) -> int:
        return 1 if self.endog.ndim == 1 else self.endog.shape[1]

    @property
    def random(self) -> str | None:
        """The ``random=`` formula, e.g. ``"~ 1 | district/study"``."""
        return "~ 1 | " + "/".join(self.groups) if self.groups else None


def vech_positions(k: int) -> tuple[np.ndarray, np.ndarray]:
    """(row, col) of the lower triangle of a k x k matrix walked column by column (R's vech)."""
    pairs = [(i, j) for j in range(k) for i in range(j, k)]
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])


def vech_to_matrices(vech: np.ndarray, k: int) -> np.ndarray:
    """(n, k(k+1)/2) rows of a vech by column -> (n, k, k) symmetric matrices."""
    rows, cols = vech_positions(k)
    out = np.empty((vech.shape[0], k, k))
    out[:, rows, cols] = vech
    out[:, cols, rows] = vech
    return out


def _intercept_only(n: int) -> np.ndarray:
    return np.ones((n, 1))


def bcg() -> Problem:
    """BCG trials (13 studies): log odds ratios and their variances."""
    frame = datasets.load_bcg()
    return Problem(
        name="bcg",
        frame=frame,
        formula="logor ~ 1",
        S="logorvar",
        endog=frame["logor"].to_numpy(float),
        exog=_intercept_only(len(frame)),
        within_cov=frame["logorvar"].to_numpy(float),
    )


def fibrinogen() -> Problem:
    """Fibrinogen Studies Collaboration: 31 cohorts, 4 outcomes b2..b5.

    The 10 columns ``V_2_2 .. V_5_5`` in file order are the vech by column of
    the 4 x 4 within-cohort covariance matrix.
    """
    frame = datasets.load_fibrinogen()
    outcomes = ["b2", "b3", "b4", "b5"]
    s_cols = [c for c in frame.columns if c.startswith("V_")]
    endog = frame[outcomes].to_numpy(float)
    return Problem(
        name="fibrinogen",
        frame=frame,
        formula=" + ".join(outcomes) + " ~ 1",
        S=s_cols,
        endog=endog,
        exog=_intercept_only(len(frame)),
        within_cov=vech_to_matrices(frame[s_cols].to_numpy(float), 4),
    )


def metareg(n_studies: int, seed: int = METAREG_SEED) -> Problem:
    """Simulated univariate meta-regression ``y ~ x1 + x2 + x3`` (see module docstring)."""
    rng = np.random.default_rng(seed)
    x1 = rng.standard_normal(n_studies)
    x2 = rng.uniform(0.0, 1.0, n_studies)
    x3 = (rng.uniform(0.0, 1.0, n_studies) < 0.3).astype(float)
    v = rng.gamma(shape=2.0, scale=1.0 / 20.0, size=n_studies)
    y = (0.1 + 0.2 * x1 - 0.1 * x2 + 0.05 * x3
         + rng.normal(0.0, np.sqrt(0.04), n_studies)
         + rng.normal(0.0, 1.0, n_studies) * np.sqrt(v))
    frame = pd.DataFrame({"y": y, "x1": x1, "x2": x2, "x3": x3, "v": v})
    exog = np.column_stack([np.ones(n_studies), x1, x2, x3])
    return Problem(
        name=f"metareg_{n_studies}",
        frame=frame,
        formula="y ~ x1 + x2 + x3",
        S="v",
        endog=y,
        exog=exog,
        within_cov=v,
    )


def _spread(total: int, capacity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Counts c_i with 1 <= c_i <= capacity_i summing to ``total``, the extras at random."""
    spare_slots = np.repeat(np.arange(len(capacity)), capacity - 1)
    extra = total - len(capacity)
    if extra < 0 or extra > len(spare_slots):
        raise ValueError(f"cannot place {total} units in {len(capacity)} groups of capacity {capacity.sum()}")
    chosen = rng.choice(len(spare_slots), size=extra, replace=False)
    return 1 + np.bincount(spare_slots[chosen], minlength=len(capacity))


def _split(size: int, parts: int, rng: np.random.Generator) -> np.ndarray:
    """A random composition of ``size`` into ``parts`` positive integers."""
    cuts = np.sort(rng.choice(np.arange(1, size), size=parts - 1, replace=False))
    return np.diff(np.concatenate([[0], cuts, [size]]))


def _article_sizes(n_articles: int, total: int, smallest: int, largest: int,
                   median: int, rng: np.random.Generator) -> np.ndarray:
    """Right-skewed article sizes with the given range, median and sum (exactly)."""
    from scipy import stats

    quantiles = stats.norm.ppf((np.arange(n_articles) + 0.5) / n_articles)

    def sizes_for(spread: float) -> np.ndarray:
        s = np.clip(np.rint(median * np.exp(spread * quantiles)), smallest, largest).astype(int)
        s[0], s[-1] = smallest, largest
        return s

    lo, hi = 0.01, 5.0
    for _ in range(60):  # bisect the log-scale spread until the sum is nearest to total
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if sizes_for(mid).sum() < total else (lo, mid)
    sizes = sizes_for(lo)
    # settle the rounding remainder on sizes above the median, keeping the range
    upper = np.arange(n_articles // 2 + 1, n_articles - 1)
    step = 1 if sizes.sum() < total else -1
    i = 0
    while sizes.sum() != total:
        j = upper[i % len(upper)]
        if smallest < sizes[j] + step < largest and sizes[j] + step >= median:
            sizes[j] += step
        i += 1
    return rng.permutation(sizes)


def four_level(seed: int = FOUR_LEVEL_SEED) -> Problem:
    """Four nested levels of random intercepts: article/experiment/sample/effect."""
    rng = np.random.default_rng(seed)
    n_articles, n_experiments, n_samples, n_effects = 126, 310, 582, 1653
    level_variances = {"article": 0.0225, "experiment": 0.0092, "sample": 0.0011, "effect": 0.0218}

    effects_per_article = _article_sizes(n_articles, n_effects, 2, 48, 9, rng)
    experiments_per_article = _spread(n_experiments, effects_per_article, rng)
    effects_per_experiment = np.concatenate([
        _split(e, x, rng) for e, x in zip(effects_per_article, experiments_per_article)])
    samples_per_experiment = _spread(n_samples, effects_per_experiment, rng)
    effects_per_sample = np.concatenate([
        _split(e, s, rng) for e, s in zip(effects_per_experiment, samples_per_experiment)])

    article = np.repeat(np.repeat(np.repeat(np.arange(n_articles), experiments_per_article),
                                  samples_per_experiment), effects_per_sample)
    experiment = np.repeat(np.repeat(np.arange(n_experiments), samples_per_experiment), effects_per_sample)
    sample = np.repeat(np.arange(n_samples), effects_per_sample)
    effect = np.arange(n_effects)

    codes = {"article": article, "experiment": experiment, "sample": sample, "effect": effect}
    y = np.full(n_effects, 0.1)
    for level, code in codes.items():
        u = rng.normal(0.0, np.sqrt(level_variances[level]), code.max() + 1)
        y += u[code]
    v = rng.uniform(0.0002, 0.002, n_effects)
    y += rng.normal(0.0, 1.0, n_effects) * np.sqrt(v)

    frame = pd.DataFrame({"y": y, "v": v, **{k: c + 1 for k, c in codes.items()}})
    return Problem(
        name="four_level",
        frame=frame,
        formula="y ~ 1",
        S="v",
        endog=y,
        exog=_intercept_only(n_effects),
        within_cov=v,
        groups=list(codes),
    )


def nmmaps_tmeanagepar() -> Problem:
    """NMMAPS: 108 cities x 3 age groups, 4 spline coefficients of temperature."""
    frame = datasets.load_nmmaps_tmeanagepar()
    outcomes = ["coef1", "coef2", "coef3", "coef4"]
    s_cols = [f"vcov{i}" for i in range(1, 11)]
    # the design's intercept and agecat contrasts, as the formula interface builds them
    agecat = pd.Categorical(frame["agecat"])
    dummies = pd.get_dummies(agecat, drop_first=True, dtype=float).to_numpy()
    return Problem(
        name="nmmaps_tmeanagepar",
        frame=frame,
        formula=" + ".join(outcomes) + " ~ agecat",
        S=s_cols,
        endog=frame[outcomes].to_numpy(float),
        exog=np.column_stack([np.ones(len(frame)), dummies]),
        within_cov=vech_to_matrices(frame[s_cols].to_numpy(float), 4),
        method="ml",
        groups=["city"],
    )


def cs_matrix(k: int, variance: float, correlation: float) -> np.ndarray:
    return variance * ((1.0 - correlation) * np.eye(k) + correlation * np.ones((k, k)))


def nested_cs(n_outer: int, seed: int = NESTED_CS_SEED, inner_per_outer: int = 10) -> Problem:
    """Two nested levels, k = 3, compound symmetry at both (see module docstring)."""
    rng = np.random.default_rng(seed + n_outer)
    k, n = 3, n_outer * inner_per_outer
    psi = cs_matrix(k, 1.0, 0.8)
    outer = np.repeat(np.arange(n_outer), inner_per_outer)
    inner = np.arange(n)
    u_outer = rng.multivariate_normal(np.zeros(k), psi, n_outer)
    u_inner = rng.multivariate_normal(np.zeros(k), psi, n)
    sd = np.sqrt(rng.uniform(0.1, 2.0, (n, k)))
    corr = cs_matrix(k, 1.0, 0.8)
    within = sd[:, :, None] * corr[None] * sd[:, None, :]
    noise = np.einsum("nij,nj->ni", np.linalg.cholesky(within), rng.standard_normal((n, k)))
    endog = u_outer[outer] + u_inner + noise

    outcomes = [f"y{j + 1}" for j in range(k)]
    rows, cols = vech_positions(k)
    s_cols = [f"S{i + 1}{j + 1}" for i, j in zip(rows, cols)]
    frame = pd.DataFrame(endog, columns=outcomes)
    frame[s_cols] = within[:, rows, cols]
    frame["outer"] = outer + 1
    frame["inner"] = inner + 1
    return Problem(
        name=f"nested_cs_{n_outer}",
        frame=frame,
        formula=" + ".join(outcomes) + " ~ 1",
        S=s_cols,
        endog=endog,
        exog=_intercept_only(n),
        within_cov=within,
        bscov=["cs", "cs"],
        groups=["outer", "inner"],
    )


PROBLEMS = {
    "bcg": bcg,
    "fibrinogen": fibrinogen,
    "metareg_20000": lambda: metareg(20_000),
    "metareg_1000000": lambda: metareg(1_000_000),
    "four_level": four_level,
    "nmmaps_tmeanagepar": nmmaps_tmeanagepar,
    "nested_cs_50": lambda: nested_cs(50),
    "nested_cs_500": lambda: nested_cs(500),
}


def problem(name: str) -> Problem:
    """Build the named workload's data (deterministic)."""
    return PROBLEMS[name]()
