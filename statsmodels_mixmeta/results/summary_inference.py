"""
What ``summary()`` says about the inference on the fixed effects: the
covariance type, the reference distribution (z or t) and the degrees of
freedom of the fit's df rule, as header values and notes.
"""
import numpy as np


def df_method_name(results):
    """The name of the fit's df rule ("residual", "kenward-roger", ...)."""
    rule = results._df_rule
    return getattr(rule, "name", None) or str(results.df_method)


def df_text(results):
    """The degrees of freedom as one number, or their range when the
    coefficients have different ones."""
    df = np.asarray(results.df_inference, dtype=float)
    if np.all(df == df[0]):
        return format_df(df[0])
    return f"{format_df(df.min())} to {format_df(df.max())}"


def format_df(value):
    """Whole numbers without decimals, others with two."""
    value = float(value)
    if not np.isfinite(value):
        return "inf"
    return f"{value:.0f}" if value == round(value) else f"{value:.2f}"


#: what each df rule means, for the notes
DF_NOTES = {
    "residual": "observed values minus fixed coefficients",
    "containment": "per coefficient, the cells (group, outcome) of the "
                   "outermost grouping level within which it is constant, "
                   "minus the fixed coefficients (metafor's dfs='contain')",
    "satterthwaite": "Satterthwaite's approximation per coefficient, from "
                     "the information of the Psi parameters",
    "kenward-roger": "Kenward-Roger's approximation per coefficient; "
                     "standard errors from the Kenward-Roger adjusted "
                     "covariance of the fixed effects",
}


def df_note(results):
    """The note on the degrees of freedom of t tests and intervals."""
    name = df_method_name(results)
    df = np.asarray(results.df_inference, dtype=float)
    count = (f"{format_df(df[0])} degrees of freedom" if np.all(df == df[0])
             else "degrees of freedom per coefficient (column df)")
    meaning = DF_NOTES.get(name, f"the {name} rule")
    return f"t tests and intervals with {count}: {meaning}."


def inference_notes(results):
    """The notes on the covariance type and, with ``use_t``, the df."""
    out = []
    description = (results.cov_kwds or {}).get("description")
    if description:
        rule = results._df_rule
        if rule is None or rule.cov is None:
            out.append(f"Covariance type {results.cov_type}: {description}")
        else:
            out.append(f"Covariance type {results.cov_type}, adjusted by "
                       f"the {df_method_name(results)} rule for the "
                       "estimation of Psi: the model-based (X' Sigma^-1 "
                       "X)^-1 plus the small-sample correction of Kenward "
                       "& Roger (1997).")
    if results.use_t:
        out.append(df_note(results))
    return out
