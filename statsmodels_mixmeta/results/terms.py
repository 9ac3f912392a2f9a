"""
Wald tests of the model's terms, each across all outcomes.

With ``k`` outcomes the fixed effects are ordered outcome-major: term ``t``
with columns ``c`` of the per-outcome design has the coefficients
``j p + c`` of every outcome ``j``.  The test of ``t`` is the joint Wald
test of all of them,

.. math::

    W = (R \\hat\\beta)' (R V R')^{-1} (R \\hat\\beta) \\sim \\chi^2_{r},

``R`` the rows of the identity at those ``r = k |c|`` coefficients and ``V``
the covariance of ``beta``; with ``use_t``, ``W / r`` is referred to
``F(r, df_resid)`` (statsmodels' ``wald_test`` does the arithmetic).
statsmodels' own ``wald_test_terms`` takes the terms' columns from the
per-outcome formula and would test outcome 1 only.

The terms are the formula's (a factor ``C(x)`` is one term with all its
columns); a model built from arrays has one term per column of ``exog``.

Pairwise comparisons of a factor's levels (:func:`t_test_pairwise`) are
within one outcome: statsmodels' contrasts on the per-outcome columns,
moved to that outcome's block of ``params``.
"""
from collections import defaultdict

import numpy as np
import pandas as pd
from statsmodels.formula._manager import FormulaManager
from statsmodels.stats.contrast import (MultiCompResult, WaldTestResults,
                                       t_test_multi)
from statsmodels.stats.contrast import t_test_pairwise as _sm_pairwise


def term_columns(model):
    """
    ``(name, columns)`` of every term, ``columns`` the positions of its
    columns in the per-outcome design, in design order.
    """
    formula = model.formula_terms
    if formula is None:
        return [(str(name), np.array([col]))
                for col, name in enumerate(model.design.term_names)]
    spec = formula.model_spec
    mgr = FormulaManager(formula.engine)
    out = []
    for term in spec.terms:
        cols = np.arange(model.design.n_terms)[mgr.get_slice(spec, term)]
        name = str(mgr.get_term_name(term))
        if cols.size:
            # formulaic calls the intercept "1"; patsy and the columns
            # "Intercept"
            out.append(("Intercept" if name == "1" else name, cols))
    return out


def coefficients_of(columns, n_outcomes, n_terms):
    """Positions in ``params`` of ``columns`` for every outcome."""
    return (np.arange(n_outcomes)[:, None] * n_terms
            + np.asarray(columns)[None, :]).ravel()


def constraint_rows(positions, n_params):
    """Rows of the identity at ``positions``: the ``R`` of ``R beta = 0``."""
    return np.eye(n_params)[np.asarray(positions)]


def wald_test_terms(results, skip_single=False, extra_constraints=None,
                    combine_terms=None, scalar=True):
    """
    Joint Wald test of each term over all outcomes (see the module
    docstring); the arguments are statsmodels' ``wald_test_terms``'s.

    Parameters
    ----------
    results : MixMetaResults
    skip_single : bool
        Leave out terms with a single coefficient over all outcomes.
    extra_constraints : list of (name, ndarray), optional
        More constraint matrices ``R`` on ``params`` to test.
    combine_terms : list of str, optional
        Also test together all terms whose name contains each string.
    scalar : bool
        Passed to ``wald_test``.

    Returns
    -------
    statsmodels.stats.contrast.WaldTestResults
        Its ``table`` has ``statistic``, ``pvalue``, ``df_constraint`` (and
        ``df_denom`` with ``use_t``), one row per term.
    """
    model = results.model
    k, p = model.n_outcomes, model.design.n_terms
    n_params = k * p
    constraints, combined = [], defaultdict(list)
    for name, cols in term_columns(model):
        positions = coefficients_of(cols, k, p)
        for part in combine_terms or ():
            if part in name:
                combined[part].append(positions)
        if skip_single and positions.size == 1:
            continue
        constraints.append((name, constraint_rows(positions, n_params)))
    for part in combine_terms or ():
        if not combined[part]:
            raise ValueError(f"combine_terms: no term name contains "
                             f"{part!r}; the terms are "
                             f"{[n for n, _ in term_columns(model)]}")
        positions = np.unique(np.concatenate(combined[part]))
        constraints.append((part, constraint_rows(positions, n_params)))
    for name, matrix in extra_constraints or ():
        matrix = np.atleast_2d(np.asarray(matrix, dtype=float))
        if matrix.shape[1] != n_params:
            raise ValueError(
                f"extra constraint {name!r} has {matrix.shape[1]} columns; "
                f"params has {n_params}")
        constraints.append((name, matrix))
    if not constraints:
        raise ValueError("no constraints to test: every term has a single "
                         "coefficient and skip_single=True")
    use_t = bool(results.use_t)
    rows = []
    for name, matrix in constraints:
        test = results.wald_test(matrix, use_f=use_t, scalar=scalar)
        # chi2 tests keep their df in df_denom (statsmodels' convention)
        row = [test.statistic, test.pvalue,
               int(test.df_num if use_t else test.df_denom)]
        if use_t:
            row.append(test.df_denom)
        rows.append(row)
    columns = ["statistic", "pvalue", "df_constraint"]
    if use_t:
        columns.append("df_denom")
    table = pd.DataFrame(rows, index=[name for name, _ in constraints],
                         columns=columns)
    out = WaldTestResults(None, ["chi2", "F"][use_t], None, table=table)
    out.constraints = constraints
    return out


def t_test_pairwise(results, term_name, method="hs", alpha=0.05,
                    factor_labels=None, outcome=None):
    """
    statsmodels' pairwise t tests of the levels of factor ``term_name``,
    on the coefficients of ``outcome`` (see
    ``MixMetaResults.t_test_pairwise``).
    """
    model = results.model
    names = list(model.design.outcome_names)
    if model.formula_terms is None:
        raise ValueError(
            "t_test_pairwise needs the factor coding of a formula model "
            "(MixMeta.from_formula); with arrays, use t_test with the "
            "contrasts")
    if outcome is None and len(names) == 1:
        outcome = names[0]
    if outcome not in names:
        raise ValueError(
            f"t_test_pairwise compares levels within one outcome: give "
            f"outcome= one of {names} (got {outcome!r})")
    first = _sm_pairwise(results, term_name, method=method, alpha=alpha,
                         factor_labels=factor_labels)
    shift = names.index(outcome) * model.design.n_terms
    # statsmodels' contrasts sit in the first outcome's block
    contrasts = np.roll(np.asarray(first.contrasts), shift, axis=1)
    frame = t_test_multi(results, contrasts, method=method, ci_method=None,
                         alpha=alpha, contrast_names=first.contrast_labels)
    out = MultiCompResult(result_frame=frame, contrasts=contrasts,
                          term=first.term,
                          contrast_labels=first.contrast_labels,
                          term_encoding_matrix=first.term_encoding_matrix)
    out.outcome = outcome
    return out
