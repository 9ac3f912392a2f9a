"""
The model's data as statsmodels sees them: the mixin of
:class:`statsmodels_mixmeta.model.MixMeta` that builds a model from a formula
(``from_formula``), shows its frozen design as the init keywords it is
rebuilt from (``S``, ``groups``, ``exog_re``, ``addS``, ``formula_terms``,
``random_terms``, ...) and pickles it without statsmodels' formula
re-evaluation.

Part of the model (ranked just before ``model.py``): it only reads
``self.design`` and ``self.data``, which the model sets.
"""
import pandas as pd

from .design import formula as _formula
from .design import random_terms as _terms


class ModelData:
    """The formula constructor, the design shown as init keywords, and
    pickling of :class:`~statsmodels_mixmeta.model.MixMeta`."""


    @property
    def n_groups(self):
        """Number of independent (outer) groups."""
        return self.design.n_groups

    @property
    def level_names(self):
        """Grouping factors, outer to inner (``[None]`` without random=)."""
        return list(self.design.levels.names)

    @property
    def model_spec(self):
        """The formula's model spec (None for array input)."""
        spec = self.design.fixed_spec
        if isinstance(spec, _formula.PredictorFormula):
            return spec.model_spec
        # a patsy spec is dropped by pickling, and restored on the data
        return getattr(self.data, "model_spec", None) if spec is None \
            else spec

    @property
    def S(self):
        """Within-study covariances of the rows used, ``(n, k, k)`` (``(n,)``
        for one outcome); None with ``addS``.  An init keyword."""
        cov = self.design.within_cov
        if cov is None or cov.shape[1] > 1:
            return cov
        return cov[:, 0, 0]

    Scor = None     # S above is complete

    @property
    def groups(self):
        """Grouping labels of the rows used (DataFrame, one column per
        level); None without random=.  An init keyword."""
        levels = self.design.levels
        if levels.implicit:
            return None
        return pd.DataFrame(levels.group_labels, columns=list(levels.names),
                            index=self.design.row_labels)

    @property
    def exog_re(self):
        """Random predictors of every level (DataFrames), None without
        random=.  An init keyword."""
        levels = self.design.levels
        if levels.implicit:
            return None
        return [pd.DataFrame(z, columns=list(names),
                             index=self.design.row_labels)
                for z, names in zip(levels.random_exog, levels.random_names)]

    @property
    def addS(self):
        """``addS`` by outer group label; None when S is given.  An init
        keyword."""
        cov = self.design.group_cov
        if cov is None:
            return None
        return dict(zip(self.design.levels.outer_labels, cov))

    @classmethod
    def from_formula(cls, formula, data, S=None, subset=None, Scor=None,
                     random=None, missing="drop", eval_env=0, **kwargs):
        """
        Create a model from a formula and a data frame.

        Parameters
        ----------
        formula : str
            ``"y ~ x1 + x2"``; several outcomes as ``"y1 + y2 ~ x"``.
        data : pandas.DataFrame
        S : str, list of str or array_like
            Column name(s) of the within-study (co)variances in ``data``
            (see :class:`MixMeta` for the layouts), or an array with one row
            per row of ``data`` (a pandas Series or DataFrame is matched to
            ``data``'s rows by index label).
        subset : array_like, optional
            Rows of ``data`` to use (as ``data.loc[subset]``).
        Scor : float, str or array_like, optional
            Within-study correlations; a column name gives one per study.
        random : str, list or dict, optional
            The random part and its grouping levels, outer to inner:
            ``"~ z | g"``, ``"~ 1 | g1/g2"`` (nested), a list of one-sided
            formulas with their groups, or ``{"g1": "~ 1", "g2": "~ z"}``
            (see :mod:`statsmodels_mixmeta.design.random_terms`).  Without it every row
            is its own group with one random effect per outcome.
        missing : {"drop", "raise", "none"}
            As for :class:`MixMeta`.  The design is built from the rows
            kept: factor levels (and categories of categorical columns)
            that occur only in dropped rows are dropped, as R's
            ``model.frame`` does, for the fixed part, the grouping levels
            and the random predictors alike.
        eval_env : int
            Frames above the caller in which to look up names used in the
            formula that are not columns of ``data``.
        **kwargs
            Other arguments of :class:`MixMeta`.
        """
        data = _formula.subset_rows(data, subset)
        arguments, spec, namespace, frame = _formula.formula_inputs(
            formula, data, S=S, Scor=Scor, random=random, missing=missing,
            eval_env=eval_env + 1, groups=kwargs.pop("groups", None),
            exog_re=kwargs.pop("exog_re", None))
        if random is not None:
            kwargs["random_terms"] = _terms.parse_random(random)
        # the fitted right-hand side, to rebuild columns from new data, is
        # kept on the design
        terms_formula = _formula.PredictorFormula(
            _formula.split_formula(formula)[1], spec, namespace, frame,
            _formula.FormulaManager().engine)
        mod = cls(missing=missing, formula=formula, model_spec=spec,
                  formula_terms=terms_formula, **arguments, **kwargs)
        mod.data.frame = data
        return mod

    @property
    def formula_terms(self):
        """The fitted right-hand side of a formula model
        (:class:`~statsmodels_mixmeta.design.formula.PredictorFormula`,
        kept on the design); None for array input."""
        spec = self.design.fixed_spec
        return spec if isinstance(spec, _formula.PredictorFormula) else None

    @property
    def random_terms(self):
        """The parsed ``random=`` formulas (kept on the design), to rebuild
        random predictors from new data; None for array input."""
        return getattr(self.design, "random_terms", None)

    def __getstate__(self):
        # statsmodels drops patsy's unpicklable design info from the data
        # and re-evaluates the formula in guessed stack frames on loading;
        # formula_terms rebuilds it from what it kept instead
        state = dict(self.__dict__)
        if "model_spec" in self.data.__dict__:
            # a copy that bypasses statsmodels' own pickling of the data
            data = state["data"] = object.__new__(type(self.data))
            data.__dict__.update(self.data.__dict__)
            del data.model_spec
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.formula_terms is not None:
            self.data.model_spec = self.formula_terms.model_spec

    @property
    def n_outcomes(self):
        return self.design.n_outcomes
