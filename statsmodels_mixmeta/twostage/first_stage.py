"""
One group's first stage: fit, pick the requested coefficients, extract their
estimates and the matching block of ``cov_params()``, and say what is wrong
with them.

:func:`fit_one` is what an executor runs for each group (it must be a
module-level function so that process pools and Dask can pickle it); it
returns a :class:`GroupOutcome` of plain arrays and text, never the fitted
results object, so that only a few numbers travel back from a worker.
:func:`extract` does the same for a results object the user fitted.

Failure kinds (the ``reason`` texts of ``TwoStage.failures``):

* ``"raised: <Exception>: <message>"``: ``fit_group`` raised;
* ``"did not converge"``: the fit reports ``converged`` False (GLM,
  MixedLM) or ``mle_retvals["converged"]`` False;
* ``"not identified: <name> (rank-deficient design)"``: the coefficient is
  not estimable from the group's design
  (:mod:`.identifiability`); ``"not identified: <name> (not in this
  group's fit)"`` when the group's fit has no such coefficient (a formula
  factor level absent from the group);
* ``"non-finite estimate: <name>"``, ``"non-finite variance: <name>"``,
  ``"non-positive variance: <name>"`` (also a standard error of at most
  :data:`~.identifiability.SE_RTOL` times the estimate: a perfect fit);
* ``"singular covariance block"``: the block of the estimable coefficients
  is singular (the whole group is dropped).
"""
import math
from dataclasses import dataclass, field

import numpy as np

from . import identifiability as _ident


@dataclass
class GroupOutcome:
    """
    What one group's first stage hands back.

    Attributes
    ----------
    label : object
        The group's label.
    estimates : ndarray, (k,)
        NaN for a coefficient that is not kept.
    cov : ndarray, (k, k)
        The matching ``cov_params()`` block, NaN rows and columns for a
        coefficient that is not kept.
    nobs : float
    converged : bool
    problems : list of (reason, positions)
        Each problem found and the coefficients it removes (positions in
        the requested list; None for all of them).  ``{names}`` in a
        reason stands for the names of those coefficients.
    names : list of str or None
        Names of the group's fitted coefficients (to report valid names
        and to name coefficients picked by position); None when not
        computed.
    missing : list
        Requested names (or positions) the group's fit does not have.
    requested : list of str or int, or None
        The requested names (``params``, or what the callable ``params``
        gave for this group), or positions; None when the fit raised.
    """

    label: object
    estimates: np.ndarray
    cov: np.ndarray
    nobs: float = np.nan
    converged: bool = False
    problems: list = field(default_factory=list)
    names: list = None
    missing: list = field(default_factory=list)
    requested: list = None

    @property
    def dropped(self):
        """Nothing of the group is kept."""
        return not any(math.isfinite(v) for v in self.estimates.tolist())


def fit_one(fit_group, params, label, frame, name_positions=True):
    """
    Run ``fit_group(frame)`` and extract ``params`` (an executor's task).

    An exception of ``fit_group`` becomes a problem of the group, not an
    error of the whole run.  ``name_positions=False`` skips naming the
    coefficients picked by position (another group of the run names them).
    """
    try:
        results = fit_group(frame)
    except Exception as exc:  # the group fails, the others go on
        k = len(params) if not callable(params) else 0
        return _empty(label, k, [(f"raised: {type(exc).__name__}: {exc}",
                                  None)])
    if (getattr(results, "params", None) is None
            or not callable(getattr(results, "cov_params", None))):
        k = len(params) if not callable(params) else 0
        return _empty(label, k, [(
            f"fit_group returned a {type(results).__name__}, not fitted "
            "statsmodels results (with params and cov_params())", None)])
    return extract(label, results, params, name_positions)


def _empty(label, k, problems, nobs=np.nan, names=None):
    return GroupOutcome(label, np.full(k, np.nan), np.full((k, k), np.nan),
                        nobs=nobs, converged=False, problems=problems,
                        names=names)


def param_names_of(results):
    """The names of a results object's ``params``: statsmodels' own
    (``model.data.param_names``, what its pandas wrapper labels ``params``
    with), else the ``params`` index, ``exog_names`` or ``x1..xp``."""
    inner = getattr(results, "_results", results)
    size = np.size(inner.params)
    data = getattr(getattr(inner, "model", None), "data", None)
    names = getattr(data, "param_names", None)
    if names is not None and len(names) == size:
        return [str(name) for name in names]
    index = getattr(results.params, "index", None)
    if index is not None:
        return [str(name) for name in index]
    names = getattr(getattr(inner, "model", None), "exog_names", None)
    if names is not None and len(names) >= size:
        return [str(name) for name in names][:size]
    return [f"x{j + 1}" for j in range(size)]


def resolve_params(params, results):
    """The requested names (``params`` itself, or ``params(results)``),
    or positions when ``params`` holds integers."""
    if callable(params):
        params = params(results)
    if isinstance(params, str):
        params = [params]
    params = list(params)
    if params and all(isinstance(p, (int, np.integer))
                      and not isinstance(p, bool) for p in params):
        return [int(p) for p in params]
    return [str(name) for name in params]


def converged_flag(results):
    """False when the fit says it did not converge; True otherwise."""
    flag = getattr(results, "converged", None)
    if flag is None:
        retvals = getattr(results, "mle_retvals", None)
        if isinstance(retvals, dict):
            flag = retvals.get("converged")
    return True if flag is None else bool(flag)


def _cov_block(results, inner, names, positions):
    """The block of ``cov_params()`` at ``positions`` of ``params``
    (statsmodels keeps the two aligned; by label if the shapes differ)."""
    cov = np.asarray(inner.cov_params(), dtype=float)
    size = np.size(inner.params)
    if cov.shape != (size, size) and all(isinstance(n, str) for n in names):
        cov = results.cov_params()
        where = {str(name): i for i, name in enumerate(cov.index)}
        positions = [where[name] for name in names]
        cov = np.asarray(cov, dtype=float)
    return cov[positions][:, positions]


def extract(label, results, params, name_positions=True):
    """
    Estimates and covariance block of ``params`` from a fitted statsmodels
    results object, with the checks of the module docstring.

    Returns
    -------
    GroupOutcome
    """
    names = resolve_params(params, results)
    k = len(names)
    # statsmodels' wrapper costs on every attribute: read the plain results
    inner = getattr(results, "_results", results)
    by_position = bool(names) and isinstance(names[0], int)
    if by_position:
        # naming array-input coefficients costs statsmodels a pass over
        # exog: done only where asked (one group per task)
        size = np.size(inner.params)
        fitted = param_names_of(results) if name_positions else None
        where = {j: j for j in range(size)}
    else:
        fitted = param_names_of(results)
        where = {name: j for j, name in enumerate(fitted)}
    nobs = float(getattr(inner, "nobs", np.nan))
    if not converged_flag(inner):
        outcome = _empty(label, k, [("did not converge", None)], nobs, fitted)
        outcome.requested = names
        return outcome
    present = [i for i, name in enumerate(names) if name in where]
    missing = [names[i] for i in range(k) if names[i] not in where]
    estimates = np.full(k, np.nan)
    cov = np.full((k, k), np.nan)
    outcome = GroupOutcome(label, estimates, cov, nobs=nobs, converged=True,
                           names=fitted, missing=missing, requested=names)
    if missing:
        outcome.problems.append(
            ("not identified: {names} (not in this group's fit)",
             [i for i in range(k) if names[i] not in where]))
    if not present:
        return outcome
    columns = [where[names[i]] for i in present]
    values = np.asarray(inner.params, dtype=float)[columns]
    block = _cov_block(results, inner, [names[i] for i in present], columns)
    present_array = np.asarray(present)
    keep = np.ones(len(present), dtype=bool)
    model = getattr(inner, "model", None)
    exog = None if _ident.known_full_rank(model) \
        else _ident.identifying_design(model)
    if exog is not None and exog.shape[1] > max(columns):
        aliased = _ident.non_estimable(exog, columns)
        if aliased:
            keep[aliased] = False
            outcome.problems.append(
                ("not identified: {names} (rank-deficient design)",
                 present_array[aliased].tolist()))
    problems, kept = _screen(values, block, keep, present_array)
    outcome.problems.extend(problems)
    if kept.size == len(present) == k:
        estimates[:] = values
        cov[:] = block
    else:
        target = np.asarray(present)[kept]
        estimates[target] = values[kept]
        cov[np.ix_(target, target)] = block[np.ix_(kept, kept)]
    return outcome


def _screen(values, block, keep, present):
    """
    Problems of the estimates ``values`` and their covariance ``block``
    among the coefficients still kept (``keep``), and the positions kept
    (in ``values``; ``present`` maps them to the requested coefficients).
    """
    problems = []
    tol = _ident.SE_RTOL
    found = {"non-finite estimate": [], "non-finite variance": [],
             "non-positive variance": []}
    # k is small: plain floats are cheaper than numpy calls here
    for i, (value, variance) in enumerate(zip(values.tolist(),
                                              np.diagonal(block).tolist())):
        if not keep[i]:
            continue
        if not math.isfinite(value):
            found["non-finite estimate"].append(i)
        elif not math.isfinite(variance):
            found["non-finite variance"].append(i)
        elif variance <= 0 or math.sqrt(variance) <= tol * abs(value):
            found["non-positive variance"].append(i)
    for text, bad in found.items():
        if bad:
            keep[bad] = False
            problems.append((text + ": {names}", present[bad].tolist()))
    kept = np.flatnonzero(keep)
    if kept.size == 0:
        return problems, kept
    sub = block if kept.size == len(present) else block[kept][:, kept]
    if not all(map(math.isfinite, sub.ravel().tolist())) \
            or _ident.singular_block(sub):
        problems.append(("singular covariance block",
                         present[kept].tolist()))
        kept = kept[:0]
    return problems, kept
