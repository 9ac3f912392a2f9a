"""R mixmeta 1.2.1 reference results, converted to this package's conventions.

The numbers live in ``tests/results/mixmeta_reference.json`` (made by
``tests/results/make_reference.R``; its README describes the layout). Tests read
them only through this module, never from outside the repository.

Conventions applied by :func:`case`
-----------------------------------
* Coefficients are **outcome-major**: all terms of outcome 1, then outcome 2, ...
  R orders them predictor-major (``PD.(Intercept)``, ``AL.(Intercept)``,
  ``PD.year``, ``AL.year``). ``coef`` and ``vcov`` (both axes) are permuted.
* Names are ``"{outcome}:{term}"`` for k > 1 and ``"{term}"`` for k = 1, with
  R's ``(Intercept)`` renamed ``Intercept``; other terms keep R's spelling
  (``ablat``, ``allocrandom``, ``factor(time)6``, ``I(1/time2treat)``).
  For k > 1 and one predictor R names coefficients by outcome only (``y1``,
  ``b2``, ``sbp``); every such case is intercept-only, so they become
  ``y1:Intercept`` etc. Outcome names are R's (``y1``/``y2`` for an unnamed
  matrix, else the column names), read from the column names of ``fitted``.
* ``i2`` is a fraction (R reports percent).
* NA in R (``null`` in JSON) becomes NaN.
* Per-row results (``fitted``, ``blup``, ...) are 2-D arrays of shape (n, k):
  rows are the data rows R used, in R's order (``row_labels``).

Example
-------
>>> c = case("berkey_ml")
>>> c.coef_names
['PD:Intercept', 'PD:year', 'AL:Intercept', 'AL:year']
>>> c.coef_names_r
['PD.(Intercept)', 'AL.(Intercept)', 'PD.year', 'AL.year']
>>> c.order            # ours[i] = R[order[i]]
array([0, 2, 1, 3])
"""

import functools
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np

RESULTS_DIR = Path(__file__).resolve().parent / "results"
REFERENCE_FILE = RESULTS_DIR / "mixmeta_reference.json"

#: Cases where R's default tolerance stops short of the optimum (see
#: results/README.md, "Where R stops early"); their ``tight`` entry is better.
EARLY_STOP_CASES = (
    "fibrinogen_ml_diag",
    "gliomas_diag",
    "gliomas_har1S_diag",
    "gliomas_har1S_har1",
    "gliomas_slope_ml",
    "dbs_har1",
    "hyp_reg_reml",
)

#: Families of the single-level cases: matrix or formula input with no
#: ``random=`` and no ``addSlist``.
SINGLE_LEVEL_FAMILIES = ("bcg", "berkey", "fibrinogen", "smoking", "p53", "hyp", "hsls")

R_INTERCEPT = "(Intercept)"
INTERCEPT = "Intercept"


@functools.lru_cache(maxsize=None)
def load_reference():
    """The reference JSON as a dict ``{"meta": ..., "cases": {name: case}}`` (cached).

    Treat it as read-only: it is shared between callers.
    """
    with open(REFERENCE_FILE, encoding="utf-8") as handle:
        return json.load(handle)


def case_names():
    """All case names, in the order of the JSON file."""
    return list(load_reference()["cases"])


def _family(name):
    return name.split("_", 1)[0]


def single_level_names():
    """The 33 single-level cases (bcg*, berkey*, fibrinogen*, smoking*, p53*, hyp*, hsls*)."""
    return [n for n in case_names() if _family(n) in SINGLE_LEVEL_FAMILIES]


def multilevel_names():
    """The other 24 cases (school*, thrombolytic*, gliomas*, dbs*, alcohol*).

    These are the cases with ``random=`` or ``addSlist``, plus three single-level
    calls of the same data families: ``thrombolytic_fixed``, ``dbs_diag`` and
    ``dbs_har1`` (use :attr:`ReferenceCase.has_random` to tell them apart).
    """
    return [n for n in case_names() if _family(n) not in SINGLE_LEVEL_FAMILIES]


# --------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------


def _array(values):
    """JSON list (possibly nested, with nulls) -> float array with NaN."""
    return np.array(
        [np.nan if v is None else v for v in values]
        if not values or not isinstance(values[0], list)
        else [[np.nan if v is None else v for v in row] for row in values],
        dtype=float,
    )


def _matrix(mat):
    """R matrix ``{"rownames", "colnames", "values"}`` -> 2-D float array."""
    if mat is None:
        return None
    values = _array(mat["values"])
    return values.reshape(len(mat["values"]), -1)


def _psi(psi):
    """Psi: array, or dict level -> array (outer to inner) for multilevel models."""
    if psi is None:
        return None
    if "values" in psi:
        return _matrix(psi)
    return {level: _matrix(mat) for level, mat in psi.items()}


def _psi_names(psi):
    if psi is None:
        return None
    if "values" in psi:
        return psi.get("rownames")
    return {level: mat.get("rownames") for level, mat in psi.items()}


def our_term(term_r):
    """R term name -> ours (only the intercept is renamed)."""
    return INTERCEPT if term_r == R_INTERCEPT else term_r


@dataclass(frozen=True)
class CoefNaming:
    """How R's coefficient vector maps onto ours.

    ``order`` is the permutation with ``ours = r_values[order]``;
    ``inverse`` undoes it: ``r_values = ours[inverse]``.
    """

    outcomes: list
    terms_r: list
    names_r: list
    names: list
    order: np.ndarray
    inverse: np.ndarray

    @property
    def terms(self):
        return [our_term(t) for t in self.terms_r]

    @property
    def name_map(self):
        """R name -> our name."""
        return dict(zip(self.names_r, [self.names[i] for i in self.inverse]))

    def to_ours(self, values):
        """Reorder a coefficient vector, or a matrix on both axes, from R's order."""
        values = np.asarray(values)
        if values.ndim == 1:
            return values[self.order]
        return values[np.ix_(self.order, self.order)]

    def to_r(self, values):
        """Inverse of :meth:`to_ours`."""
        values = np.asarray(values)
        if values.ndim == 1:
            return values[self.inverse]
        return values[np.ix_(self.inverse, self.inverse)]


def coef_naming(raw):
    """Work out outcome and term names, and the permutation, from one raw case."""
    names_r = list(raw["coef_names"])
    k, p = raw["dim"]["k"], raw["dim"]["p"]
    if len(names_r) != k * p:
        raise ValueError(f"{raw['call']}: {len(names_r)} names for k={k}, p={p}")
    if k == 1:
        outcomes = [None]
        terms_r = names_r
        names = [our_term(t) for t in terms_r]
        order = np.arange(p)
    else:
        outcomes = list(raw["fitted"]["colnames"])
        if len(outcomes) != k:
            raise ValueError(f"{raw['call']}: fitted has {len(outcomes)} columns, k={k}")
        if p == 1:
            # R drops the term: names are the outcomes. All such cases are
            # intercept-only (no formula, or "~ 1").
            formula = re.search(r"~\s*([^,]*)", raw["call"])
            if names_r != outcomes or (formula and formula.group(1).strip() != "1"):
                raise ValueError(f"{raw['call']}: expected an intercept-only model")
            terms_r = [R_INTERCEPT]
        else:
            # predictor-major: names_r[j * k + i] = f"{outcome_i}.{term_j}"
            terms_r = []
            for j in range(p):
                block = names_r[j * k:(j + 1) * k]
                found = {
                    name[len(out) + 1:]
                    for name, out in zip(block, outcomes)
                    if name.startswith(out + ".")
                }
                if len(found) != 1 or not all(
                    name.startswith(out + ".") for name, out in zip(block, outcomes)
                ):
                    raise ValueError(f"cannot parse R names {block} for outcomes {outcomes}")
                terms_r.append(found.pop())
        names = [f"{out}:{our_term(t)}" for out in outcomes for t in terms_r]
        order = np.array([j * k + i for i in range(k) for j in range(p)])
    inverse = np.argsort(order)
    return CoefNaming(outcomes, terms_r, names_r, names, order, inverse)


@dataclass(frozen=True)
class QTest:
    """Cochran's Q test: overall (``.all``) first, then one per outcome when k > 1."""

    Q: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    names: list


@dataclass(frozen=True)
class TightFit:
    """The same call refitted by R with ``reltol=1e-14, maxiter=1000``."""

    call: str
    logLik: float
    coef: np.ndarray
    vcov: np.ndarray
    psi: Any
    converged: bool


@dataclass(frozen=True)
class ReferenceCase:
    """One R reference fit, in our conventions (see the module docstring).

    Attribute access or ``case["coef"]`` both work.
    """

    name: str
    call: str
    data_note: Optional[str]
    method: str
    bscov: Any  # str, or list of str (one per level)
    dim: dict
    naming: CoefNaming
    coef: np.ndarray
    vcov: np.ndarray
    psi: Any  # None, (q, q) array, or {level: array} outer to inner
    psi_names: Any
    logLik: Optional[float]
    df_logLik: int
    AIC: Optional[float]
    BIC: Optional[float]
    converged: Optional[bool]
    qtest: QTest
    i2: np.ndarray
    row_labels: list
    fitted: np.ndarray
    blup: Optional[np.ndarray]
    blup_se: Optional[np.ndarray]
    predict_se: Optional[np.ndarray]
    blup_level1: Optional[np.ndarray]
    tight: Optional[TightFit]
    addSlist: Optional[list]
    addSlist_order: Optional[list]
    addSlist_names: Optional[list]
    predict_newdata: Optional[dict]
    raw: dict = field(repr=False)

    def __getitem__(self, key):
        return getattr(self, key)

    # --- naming shortcuts -------------------------------------------------
    @property
    def coef_names(self):
        return self.naming.names

    @property
    def coef_names_r(self):
        return self.naming.names_r

    @property
    def name_map(self):
        """R coefficient name -> our name."""
        return self.naming.name_map

    @property
    def order(self):
        """Permutation with ``ours = r_values[order]``."""
        return self.naming.order

    @property
    def outcomes(self):
        return self.naming.outcomes

    @property
    def terms(self):
        return self.naming.terms

    @property
    def coef_by_name(self):
        """Our coefficient name -> value."""
        return dict(zip(self.coef_names, self.coef))

    # --- what kind of case ------------------------------------------------
    @property
    def k(self):
        return self.dim["k"]

    @property
    def n(self):
        return self.dim["n"]

    @property
    def has_random(self):
        return "random" in self.call

    @property
    def uses_addslist(self):
        return "addSlist" in self.call

    @property
    def multilevel(self):
        """True for cases listed by :func:`multilevel_names`."""
        return _family(self.name) not in SINGLE_LEVEL_FAMILIES

    @property
    def early_stop(self):
        return self.name in EARLY_STOP_CASES


def _qtest(raw):
    q = raw["qtest"]
    names = q["names"] if q["names"] is not None else [".all"]
    return QTest(_array(q["Q"]), _array(q["df"]), _array(q["pvalue"]), list(names))


def _tight(raw, naming):
    t = raw.get("tight")
    if t is None:
        return None
    return TightFit(
        call=t["call"],
        logLik=t["logLik"],
        coef=naming.to_ours(_array(t["coef"])),
        vcov=naming.to_ours(_matrix(t["vcov"])),
        psi=_psi(t["psi"]),
        converged=t["converged"],
    )


def _add_slist(raw):
    entry = raw.get("addSlist")
    if entry is None:
        return None, None, None
    if isinstance(entry, dict):
        labels = list(entry)
        mats = list(entry.values())
    else:
        labels = None
        mats = entry
    order = raw.get("addSlist_order", labels)
    if labels is not None and order != labels:
        raise ValueError(f"addSlist keys {labels} differ from addSlist_order {order}")
    return [_matrix(m) for m in mats], order, [m.get("rownames") for m in mats]


def _predict_newdata(raw):
    entry = raw.get("predict_newdata")
    if entry is None:
        return None
    table = entry["table"]
    values = _matrix(table)
    if table.get("colnames") and "fit" in table["colnames"]:
        columns = {c: values[:, j] for j, c in enumerate(table["colnames"])}
    else:  # a single prediction: R returned a vector, stored as a column
        columns = {r: values[i, :] for i, r in enumerate(table["rownames"])}
    newdata = {key: np.atleast_1d(np.asarray(val, dtype=float))
               for key, val in entry.items() if key != "table"}
    return {
        "newdata": newdata,
        "fit": columns["fit"],
        "se": columns["se"],
        "ci_lb": columns["ci.lb"],
        "ci_ub": columns["ci.ub"],
    }


def _check_psi_outcome_order(raw, naming):
    """Psi is only passed through unchanged where its order is already ours."""
    psi = raw["psi"]
    if naming.outcomes == [None] or psi is None:
        return
    if "values" not in psi or psi.get("rownames") != naming.outcomes:
        raise NotImplementedError(
            f"{raw['call']}: Psi conversion for k > 1 with random slopes not implemented"
        )


def case(name):
    """The reference case `name`, converted to our conventions.

    Each call builds new arrays, so a test may modify what it gets.

    Raises
    ------
    KeyError
        If `name` is not a reference case; the message lists the names.
    """
    cases = load_reference()["cases"]
    if name not in cases:
        raise KeyError(f"unknown reference case {name!r}; valid: {', '.join(cases)}")
    raw = cases[name]
    naming = coef_naming(raw)
    _check_psi_outcome_order(raw, naming)
    add_slist, add_slist_order, add_slist_names = _add_slist(raw)
    return ReferenceCase(
        name=name,
        call=raw["call"],
        data_note=raw.get("data_note"),
        method=raw["method"],
        bscov=raw["bscov"],
        dim=dict(raw["dim"]),
        naming=naming,
        coef=naming.to_ours(_array(raw["coef"])),
        vcov=naming.to_ours(_matrix(raw["vcov"])),
        psi=_psi(raw["psi"]),
        psi_names=_psi_names(raw["psi"]),
        logLik=raw["logLik"],
        df_logLik=raw["df_logLik"],
        AIC=raw["AIC"],
        BIC=raw["BIC"],
        converged=raw["converged"],
        qtest=_qtest(raw),
        i2=_array(raw["i2"]) / 100.0,
        row_labels=list(raw["fitted"]["rownames"]),
        fitted=_matrix(raw["fitted"]),
        blup=_matrix(raw.get("blup")),
        blup_se=_matrix(raw.get("blup_se")),
        predict_se=_matrix(raw.get("predict_se")),
        blup_level1=_matrix(raw.get("blup_level1")),
        tight=_tight(raw, naming),
        addSlist=add_slist,
        addSlist_order=add_slist_order,
        addSlist_names=add_slist_names,
        predict_newdata=_predict_newdata(raw),
        raw=raw,
    )
