"""
The printed summary of a fitted MixMeta model.

:func:`summarize` returns a :class:`statsmodels.iolib.summary.Summary`, the
object ``OLS``, ``GLM`` and ``MNLogit`` return from ``summary()``, so
``print(res.summary())``, ``.as_text()``, ``.as_html()``, ``.as_latex()`` and
``.as_csv()`` behave as they do elsewhere in statsmodels.  Its sections
follow R's ``print(summary(<mixmeta>))``:

1. the fit: estimator, Psi structure, dimensions (``k`` outcomes, ``n``
   observed values, ``m`` groups, ``p`` fixed coefficients), the (restricted)
   log-likelihood with AIC and BIC, convergence;
   with the covariance type of the fixed effects, their reference
   distribution (z, or t with ``use_t``) and degrees of freedom: one
   number, or the df method with the range of the per-coefficient df;
2. the fixed effects, one block per outcome titled by its name (rows are the
   formula's terms), with normal-based z tests (t tests with ``use_t``, on
   the df rule's degrees of freedom; a ``df`` column when they differ
   between coefficients) and ``1 - alpha`` limits;
3. Psi, the between-study covariance, as standard deviations and, below the
   diagonal, correlations;
4. Cochran's Q test of heterogeneity with I-squared in percent, overall and
   (``k > 1``) per outcome; then the H² and R² of Jackson, White and Riley
   (2012) with their I² in percent, overall and R² per coefficient, and for
   multilevel random intercepts the share of variance at each level (see
   :meth:`MixMetaResults.heterogeneity`);
5. notes: a warning when the optimiser did not converge, what is left out.

For ``"mm"`` and ``"vc"``, which maximise no likelihood (``llf`` is NaN, as
in R), the log-likelihood, AIC and BIC rows are left out and a note says why.

Layout: every table but the first lies on one grid, a stub column for the
labels and the same number of equally wide value columns, so the numbers of
all tables line up and every rule has the same width (at least 78
characters, statsmodels' width).  Values are formatted here
(:func:`format_number`), not by the table.
"""
import textwrap

import numpy as np
from statsmodels.iolib.summary import Summary
from statsmodels.iolib.table import SimpleTable
from statsmodels.iolib.tableformatting import fmt_params

from .summary_inference import (df_method_name, df_text, format_df,
                                inference_notes)

METHOD_LABELS = {"reml": "REML", "ml": "ML", "fixed": "Fixed",
                 "mm": "Method of moments", "vc": "Variance components"}
#: R's names of the Psi structures, for the notes.
STRUCTURE_LABELS = {
    "unstr": "general positive-definite", "diag": "diagonal",
    "id": "multiple of identity", "cs": "compound symmetry",
    "hcs": "heterogeneous compound symmetry",
    "ar1": "first-order autoregressive",
    "har1": "heterogeneous first-order autoregressive",
    "prop": "proportional to a fixed matrix",
    "cor": "fixed correlation", "fixed": "fixed (known)"}
#: statsmodels' summary width, and the least width of a value column.
MIN_WIDTH = 78
MIN_COLUMN_WIDTH = 10
#: Spaces between the two halves of the first table.
GAP = 3


def summarize(results, alpha=0.05):
    """
    A statsmodels-style summary of a fitted MixMeta model.

    Parameters
    ----------
    results : MixMetaResults
        The fit to describe.
    alpha : float
        The coefficient tables show ``1 - alpha`` confidence limits.

    Returns
    -------
    MixMetaSummary
        A :class:`statsmodels.iolib.summary.Summary`: printing it, or
        ``as_text()``, gives the text; ``as_html()``, ``as_latex()`` and
        ``as_csv()`` the other formats.
    """
    blocks = coefficient_blocks(results, alpha) + psi_blocks(results)
    if _q_unavailable(results) is None:
        blocks.append(heterogeneity_block(results))
        blocks += impact_blocks(results)
    left, right = fit_items(results)
    grid = _Grid.fit(blocks, left, right)

    smry = MixMetaSummary()
    smry.tables.append(grid.pairs_table(left, right, title(results)))
    last = len(blocks) - 1
    for i, block in enumerate(blocks):
        # a rule "=" opens each section; rules "-" separate the outcomes
        same = i > 0 and block.section == blocks[i - 1].section
        above = "-" if same else "="
        smry.tables.append(grid.table(block, above,
                                      below="=" if i == last else "-"))
    smry.add_extra_txt(_wrap_notes(notes(results), grid.width))
    return smry


class MixMetaSummary(Summary):
    """
    statsmodels' ``Summary``, with LaTeX output that keeps tables apart.

    ``Summary.as_latex`` merges all tables into one, which fails when a
    later table has fewer columns than the first (a Psi table of one
    outcome); here each table is its own ``tabular``, as statsmodels' own
    docstring recommends.
    """

    def as_latex(self):
        latex = "\n\n".join(t.as_latex_tabular() for t in self.tables)
        if self.extra_txt is not None:
            latex += "\n\n" + self.extra_txt.replace("\n", " \\newline\n ")
        return latex


class _Block:
    """One table: a title over the row labels, column headers, text cells."""

    def __init__(self, title, labels, headers, rows, section):
        self.title = str(title)
        self.labels = [str(v) for v in labels]
        self.headers = list(headers)
        self.rows = [list(r) for r in rows]
        self.section = section


# ------------------------------------------------------------- sections
def title(results):
    """R's description, e.g. "Multivariate random-effects meta-regression"."""
    k = results.model.n_outcomes
    kind = "fixed-effects" if results.method == "fixed" else "random-effects"
    analysis = ("meta-analysis" if len(results.model.design.term_names) == 1
                else "meta-regression")
    dims = "Univariate" if k == 1 else "Multivariate"
    return f"MixMeta: {dims} {kind} {analysis}"


def fit_items(results):
    """The ``(label, value)`` pairs of the two columns of the first table."""
    left = [("Model:", "MixMeta"),
            ("Method:", METHOD_LABELS.get(results.method, results.method)),
            ("Psi structure:", _structures_text(results) or "none")]
    if results.method not in ("mm", "vc"):
        left += [("Log-likelihood:", format_number(results.llf)),
                 ("AIC:", format_number(results.aic)),
                 ("BIC:", format_number(results.bic))]
    right = [("Outcomes (k):", str(results.model.n_outcomes)),
             ("Observed values (n):", str(int(results.nobs))),
             ("Groups (m):", str(int(results.n_groups))),
             ("Fixed coefs (p):", str(int(results.k_fe))),
             ("Psi parameters:", str(int(results.k_psi))),
             ("Converged:", "yes" if results.converged else "no")]
    left.append(("Covariance type:", results.cov_type))
    right.append(("Reference:", "t" if results.use_t else "normal (z)"))
    if results.use_t:
        left.append(("Df method:", df_method_name(results)))
        right.append(("Df:", df_text(results)))
    return left, right


def coefficient_blocks(results, alpha):
    """One block per outcome, rows are its terms (params are outcome-major)."""
    design = results.model.design
    lower, upper = np.asarray(results.conf_int(alpha), dtype=float).T
    columns = [np.asarray(results.params, dtype=float),
               np.asarray(results.bse, dtype=float),
               np.asarray(results.tvalues, dtype=float),
               np.asarray(results.pvalues, dtype=float), lower, upper]
    formats = [format_number] * 3 + [format_pvalue] + [format_number] * 2
    stat = "t" if results.use_t else "z"
    headers = ["coef", "std err", stat, f"P>|{stat}|",
               f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"]
    if results.use_t:
        df = np.asarray(results.df_inference, dtype=float)
        if not np.all(df == df[0]):     # per-coefficient df: a column
            columns.insert(3, df)
            formats.insert(3, format_df)
            headers.insert(3, "df")
    p = len(design.term_names)
    blocks = []
    for j, outcome in enumerate(design.outcome_names):
        rows = [[fmt(col[i]) for fmt, col in zip(formats, columns)]
                for i in range(j * p, (j + 1) * p)]
        blocks.append(_Block(outcome, design.term_names, headers, rows,
                             "coefficients"))
    return blocks


def psi_blocks(results):
    """
    Psi of every grouping level as standard deviations and correlations
    (lower triangle), labelled by the level's random effects.

    Empty for a fixed-effects model, which has no Psi.
    """
    if results.method == "fixed" or not results.psis:
        return []
    random = results.model.random
    blocks = []
    for level, psi, names in zip(random.level_names, results.psis,
                                 random.effect_names):
        psi = np.asarray(psi, dtype=float)
        sd = np.sqrt(np.clip(np.diag(psi), 0, None))
        with np.errstate(divide="ignore", invalid="ignore"):
            corr = psi / np.outer(sd, sd)
        rows = [[format_number(sd[i])]
                + [format_number(corr[i, j]) if j < i else ""
                   for j in range(len(names) - 1)]
                for i in range(len(names))]
        headers = ["std dev"] + [f"corr {name}" for name in names[:-1]]
        title = "Psi" if random.n_levels == 1 else f"Psi {level}"
        blocks.append(_Block(title, list(names), headers, rows, "psi"))
    return blocks


def _q_unavailable(results):
    """Why the Q test cannot be computed (a study's within-study
    covariance is singular, which an ML/REML fit with Psi > 0 allows), or
    None."""
    try:
        results.q_test()
    except ValueError as err:
        # the rows at fault, then why Q needs them regular
        return (str(err).split("; ")[0] + "; Q weights each study by the "
                "inverse of its within-study covariance.")
    return None


def heterogeneity_block(results):
    """Cochran's Q, its df and p-value, and I-squared in percent."""
    q = results.q_test()
    i2 = np.asarray(results.i2, dtype=float)
    rows = [[format_number(stat), str(int(df)), format_pvalue(pval),
             format_number(100 * share, 2)]
            for stat, df, pval, share in zip(q.statistic, q.df, q.pvalue, i2)]
    return _Block("Heterogeneity", q.names, ["Q", "df", "P>Q", "I2 (%)"],
                  rows, "heterogeneity")


def impact_blocks(results):
    """
    The measures of :meth:`MixMetaResults.heterogeneity` beyond Q: the JWR
    H², R² and their I² (percent), overall and R² per coefficient, and the
    level-specific I² (percent) per outcome where it applies.
    """
    het = results._heterogeneity["value"]
    params = list(het["R2"].index)
    h2 = [format_number(het["H2"]["overall"]),
          format_number(100 * het["I2_H"]["overall"], 2)]
    rows = [(h2 if name == "overall" else ["", ""])
            + [format_number(het["R2"][name]),
               format_number(100 * het["I2_R"][name], 2)]
            for name in params]
    blocks = [_Block("JWR", params, ["H2", "I2_H (%)", "R2", "I2_R (%)"],
                     rows, "impact")]
    levels = [m for m in het.index.unique("measure") if m.startswith("I2[")]
    if levels:
        outcomes = list(het["s2_typical"].index)
        headers = [m[3:-1] for m in levels] + ["total", "typical s2"]
        rows = [[format_number(100 * het[m][o], 2)
                 for m in levels + ["I2_total"]]
                + [format_number(het["s2_typical"][o])] for o in outcomes]
        blocks.append(_Block("I2 (%) by level", outcomes, headers, rows,
                             "levels"))
    return blocks


def _structures_text(results):
    """The Psi structure of each level, outer to inner, e.g. 'unstr/fixed'."""
    if results.method == "fixed":
        return ""
    return "/".join(s.name for s in results.model.random.structures)


def _boundary_note(results):
    """The note on a Psi on the boundary of its parameter space."""
    random = results.model.random
    where = ""
    if random.n_levels > 1:
        levels = [name for name, flag in zip(random.level_names,
                                             results.boundary_levels) if flag]
        where = f" at level {', '.join(map(str, levels))}"
    estimate = ("estimate" if results.method in ("mm", "vc")
                else "MLE" if results.method == "ml" else "REML estimate")
    return (f"The {estimate} of Psi{where} is on the boundary of its "
            "parameter space (a variance at 0, a singular Psi or a "
            "correlation at +-1): standard errors and tests of Psi there "
            "are not reliable.")


def notes(results):
    """The notes printed under the tables."""
    out = []
    if not results.converged:
        out.append("WARNING: the optimiser stopped before convergence "
                   "(Converged: no); the estimates may be unreliable. See "
                   "mle_retvals; increase maxiter or try another method.")
    if results.method != "fixed" and results.on_boundary:
        out.append(_boundary_note(results))
    optima = (results.mle_retvals or {}).get("optima")
    if optima:
        found = "; ".join(f"{format_number(llf)} from the {start} start"
                          for start, llf in optima.items())
        out.append("Distinct optima of the likelihood were found (log-"
                   f"likelihood {found}); the higher is reported "
                   f"(start: {results.mle_retvals.get('start')}).")
    if results.method == "fixed":
        out.append("Fixed-effects model: there is no random effect "
                   "(Psi = 0).")
    else:
        random = results.model.random
        described = ", ".join(
            ("" if random.n_levels == 1 else f"{level}: ")
            + f"{s.name} ({STRUCTURE_LABELS.get(s.name, s.name)})"
            for level, s in zip(random.level_names, random.structures))
        out.append(f"Psi: between-study (co)variance, structure "
                   f"{described}, as standard deviations and correlations.")
    out += inference_notes(results)
    if results.method in ("mm", "vc"):
        out.append(f"{METHOD_LABELS[results.method]} maximises no "
                   "likelihood: no log-likelihood, AIC or BIC.")
    unavailable = _q_unavailable(results)
    if unavailable is not None:
        out.append("Cochran's Q and I2 are not shown: " + unavailable)
        return out
    out.append("Q: Cochran's test of heterogeneity of the fixed-effects "
               "model; I2 in percent.")
    out.append("JWR: Jackson, White & Riley (2012): H2 = Q/df; R2 = "
               "(|V_R|/|V_F|)^(1/p) overall and V_R,jj/V_F,jj per "
               "coefficient, the variances of the estimates under the fit "
               "and the fixed-effects fit; I2_H, I2_R = (x - 1)/x, at "
               "least 0.")
    if any(m.startswith("I2[") for m in
           results._heterogeneity.index.unique("measure")):
        out.append("I2 by level: each level's variance over the sum of the "
                   "levels' variances and the typical within-study "
                   "variance s2 = (n - p)/tr(P) (Higgins & Thompson, as "
                   "metafor for rma.mv).")
    if np.isnan(np.asarray(results.q_test().statistic, dtype=float)).any():
        out.append("A per-outcome Q is nan when that outcome is missing in "
                   "some study (as in R's mixmeta).")
    return out


# ----------------------------------------------------------- formatting
def format_number(value, digits=4):
    """Fixed-point, or scientific where fixed-point would show only zeros."""
    value = float(value)
    if np.isnan(value):
        return "nan"
    if value != 0 and abs(value) < 0.5 * 10.0 ** -digits:
        return f"{value:.{max(digits - 2, 1)}e}"
    return f"{value:.{digits}f}"


def format_pvalue(value):
    """P-values as statsmodels prints them: three decimals."""
    value = float(value)
    return "nan" if np.isnan(value) else f"{value:.3f}"


def _wrap_notes(lines, width):
    wrapped = [textwrap.fill(f"[{i}] {line}", width, subsequent_indent="    ")
               for i, line in enumerate(lines, start=1)]
    return ["Notes:"] + wrapped


class _Grid:
    """
    The common layout: ``stub`` characters of labels, then ``n_columns``
    value columns of ``column`` characters, one space between columns.
    """

    def __init__(self, stub, n_columns, column):
        self.stub, self.n_columns, self.column = stub, n_columns, column

    @property
    def width(self):
        return self.stub + self.n_columns * (self.column + 1)

    @classmethod
    def fit(cls, blocks, left, right):
        """The narrowest grid, at least ``MIN_WIDTH`` wide, fitting all."""
        n_columns = max(len(b.headers) for b in blocks)
        column = max([MIN_COLUMN_WIDTH]
                     + [len(c) for b in blocks for c in b.headers]
                     + [len(c) for b in blocks for r in b.rows for c in r])
        stub = max(len(s) for b in blocks for s in [b.title] + b.labels)
        pairs = max(_half_width(left), _half_width(right)) * 2 + GAP
        grid = cls(stub, n_columns, column)
        grid.stub += max(0, MIN_WIDTH - grid.width, pairs - grid.width)
        return grid

    def table(self, block, above, below):
        """``block`` on the grid; its title heads the label column."""
        n_columns = len(block.headers)
        # blank text, not empty cells, fills the grid (html has no grid)
        fill = " " * ((self.n_columns - n_columns) * (self.column + 1))
        fmt = dict(fmt_params, data_fmts=["%s"],
                   colwidths=[self.stub] + [self.column] * n_columns,
                   table_dec_above=above, table_dec_below=below,
                   row_post=fill)
        table = SimpleTable(block.rows, block.headers, block.labels,
                            txt_fmt=fmt)
        corner = table[0][0]  # the empty header cell over the labels
        corner.data, corner._datatype = block.title, "stub"
        return table

    def pairs_table(self, left, right, heading):
        """Two columns of ``label  value`` pairs, under the title."""
        n_rows = max(len(left), len(right))
        left = left + [("", "")] * (n_rows - len(left))
        right = right + [("", "")] * (n_rows - len(right))
        # the left half is `half` wide; GAP spaces lead the right labels
        half = (self.width - 1) // 2
        label_left = max(len(k) for k, _ in left)
        label_right = max(len(k) for k, _ in right) + GAP - 1
        widths = [label_left, half - label_left - 1, label_right,
                  self.width - half - label_right - 2]
        fmt = dict(fmt_params, data_aligns="lrlr",
                   data_fmts=["%s", "%s", " " * (GAP - 1) + "%s", "%s"],
                   colwidths=widths, table_dec_above="=",
                   table_dec_below="=")
        return SimpleTable([l + r for l, r in zip(left, right)],
                           title=heading, txt_fmt=fmt)


def _half_width(pairs):
    """Width one column of pairs needs: label, a space, the widest value."""
    return max(len(k) for k, _ in pairs) + 1 + max(len(v) for _, v in pairs)
