"""
``remove_data()``: results without the data they were fitted on.

statsmodels' ``remove_data`` sets the model's ``endog``/``exog`` (and those of
``model.data``) to None, and the cached ``fittedvalues``/``resid``, so that a
results object can be stored small and still predict at new data.  A MixMeta
model holds more data than those: the frozen design (outcomes, predictors,
within-study covariances, grouping codes, random designs), the values in long
format and the stacked batches built from them, the GLS state at the
estimate, and the data frame of a formula.  :func:`remove_data` evaluates first
everything the summary and inference at new data need (log-likelihood, standard
errors, Psi, Cochran's Q and I-squared), then drops all of them: the design
is replaced by :class:`RemovedDesign`, which keeps the names and sizes, and
the model's other data by :class:`Removed`; both answer any other use with an
AttributeError saying that ``remove_data()`` removed it.  A formula keeps
the names it uses, and with patsy the columns it reads (to rebuild patsy's
design info, which cannot be pickled).

What still works afterwards: ``params``, ``bse``, ``cov_params()``,
``tvalues``, ``pvalues``, ``conf_int()``, ``t_test``/``wald_test``/
``wald_test_terms``, ``psi``, ``q_test()``, ``i2``, ``heterogeneity()``, ``llf``/``aic``/``bic``,
``summary()``, ``predict(newdata)`` and ``get_prediction(newdata)``, pickling.
What needs the data raises: ``fittedvalues``, ``resid``, ``blup()``,
``random_effects()``, predictions at the fitted rows, refitting the model.
"""

#: Values computed before the data go and kept in the results' ``_cache``
#: (statsmodels' ``remove_data`` clears all of it).
KEPT = ("llf", "bse", "tvalues", "pvalues", "psi", "_q_test", "i2", "aic",
        "bic", "df_loglike", "_heterogeneity")
#: Data held by a MixMeta model besides statsmodels' ``endog``/``exog``:
#: the design stage's arrays, the kernels' long format and batches, and the
#: remembered GLS states.  Each is set to None when present.
MODEL_DATA = ("_batch_cache", "_objective_cache", "data.frame",
              "data.row_labels")


MESSAGE = ("{what} is not available: remove_data() removed the data of this "
           "fit; refit the model on the data to compute what needs them "
           "(fitted values, residuals, BLUPs, random effects, a new fit)")


class Removed:
    """
    Stands in for a model attribute that ``remove_data()`` dropped: any use
    raises an AttributeError saying so.
    """

    def __init__(self, name):
        self.__dict__["_name"] = name

    def __getattr__(self, attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        raise AttributeError(MESSAGE.format(what=f"the model's "
                                                 f"{self._name!r}"))

    def __getitem__(self, *args):
        raise AttributeError(MESSAGE.format(what=f"the model's "
                                                 f"{self._name!r}"))

    __iter__ = __len__ = __call__ = __getitem__

    def __reduce__(self):
        return Removed, (self._name,)


#: What a design describes rather than holds, kept by :class:`RemovedDesign`.
KEPT_DESIGN = ("n_groups", "labelled", "random_terms", "fixed_spec")


class RemovedDesign:
    """
    What ``remove_data()`` leaves of a design: the names and sizes of the
    outcomes and terms, which the summary and predictions at new data need;
    any other attribute raises an AttributeError saying why.
    """

    fixed_spec = None   # the formula's right-hand side, when it has one

    def __init__(self, design):
        self.outcome_names = tuple(design.outcome_names)
        self.term_names = tuple(design.term_names)
        self.param_names = list(design.param_names)
        self.n_outcomes = len(self.outcome_names)
        self.n_terms = len(self.term_names)
        self.n_coef = self.n_outcomes * self.n_terms
        # the names of the random predictors, for prediction intervals
        levels = getattr(design, "levels", None)
        self.random_names = (getattr(design, "random_names", ())
                             if levels is None
                             else tuple(levels.random_names))
        # small descriptions of the design, kept when it has them
        for name in KEPT_DESIGN:
            try:
                setattr(self, name, getattr(design, name))
            except AttributeError:
                pass

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        raise AttributeError(MESSAGE.format(what=f"the design's {name!r}"))


def remove_data(results, statsmodels_remove_data):
    """
    Drop the data of ``results`` and of its model, keeping what the summary
    and predictions at new data need.

    Parameters
    ----------
    results : MixMetaResults
    statsmodels_remove_data : callable
        statsmodels' ``remove_data`` bound to ``results``.
    """
    kept = {}
    for name in KEPT:
        try:
            kept[name] = getattr(results, name)
        except ValueError:
            # not defined for this fit (Q and the heterogeneity measures
            # with a singular within-study covariance): stays unavailable
            pass
    model = results.model
    statsmodels_remove_data()
    # statsmodels >= 0.15 clears every cached value: put back what needs
    # the data
    results._cache.update(kept)
    for path in MODEL_DATA:
        owner, _, attr = ("model." + path).rpartition(".")
        owner = _resolve(results, owner)
        if owner is not None and attr in owner.__dict__:
            setattr(owner, attr, None if owner is not model else
                    Removed(attr))
    model._memo = {}
    if getattr(model, "formula_terms", None) is not None:
        model.formula_terms.compact()
    if not isinstance(model.design, RemovedDesign):
        model.design = RemovedDesign(model.design)
    results._state = None
    results._cache.pop("_batched_state", None)


def _resolve(obj, path):
    for part in path.split("."):
        obj = getattr(obj, part, None)
    return obj
