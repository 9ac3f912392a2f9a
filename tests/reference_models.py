"""
The Python calls that correspond to the R calls of the reference cases.

Each entry builds the (unfitted) model of one case of
``tests/results/mixmeta_reference.json``; the R call it mirrors is the
case's ``call`` (see ``tests/results/make_reference.R``).
"""
import numpy as np
import pandas as pd

import statsmodels.formula.api as smf
import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.design.covariance import inputcov

SMOKING_S = ["SBB", "SBC", "SBD", "SCC", "SCD", "SDD"]
FIBRINOGEN_S = ["V_2_2", "V_2_3", "V_2_4", "V_2_5", "V_3_3", "V_3_4",
                "V_3_5", "V_4_4", "V_4_5", "V_5_5"]
HSLS_S = ["V11", "V12", "V13", "V22", "V23", "V33"]
BERKEY_S = ["var_PD", "cov_PD_AL", "var_AL"]
PSI_COR = np.full((3, 3), 0.2) + 0.8 * np.eye(3)


def _berkey():
    data = datasets.load_berkey98()
    data["year"] = data["pubyear"] - 1983
    return data


def _hyp_cov(data):
    return inputcov(data[["sbp_se", "dbp_se"]].to_numpy(),
                    data["rho"].to_numpy())


def _bcg(formula, **kw):
    return lambda: smf.mixmeta(formula, data=datasets.load_bcg(),
                               S="logorvar", **kw)


def _berkey_model(formula, **kw):
    return lambda: smf.mixmeta(formula, data=_berkey(), S=BERKEY_S, **kw)


def _smoking(**kw):
    return lambda: smf.mixmeta("yB + yC + yD ~ 1",
                               data=datasets.load_smoking(), S=SMOKING_S,
                               **kw)


def _bcg_bivariate():
    bcg = datasets.load_bcg()
    y = np.log(np.c_[bcg.tpos / bcg.tneg, bcg.cpos / bcg.cneg])
    S = np.c_[1 / bcg.tpos + 1 / bcg.tneg, 1 / bcg.cpos + 1 / bcg.cneg]
    return smm.MixMeta(y, None, S=S, method="ml")


def _fibrinogen(**kw):
    def build():
        data = datasets.load_fibrinogen()
        y = data[["b2", "b3", "b4", "b5"]]
        return smm.MixMeta(y, None,
                           S=data[FIBRINOGEN_S].to_numpy(), **kw)
    return build


def _hyp(formula, **kw):
    def build():
        data = datasets.load_hyp()
        return smf.mixmeta(formula, data=data, S=_hyp_cov(data), **kw)
    return build


def _hyp_scor():
    data = datasets.load_hyp()
    S = data[["sbp_se", "dbp_se"]].to_numpy() ** 2
    return smf.mixmeta("sbp + dbp ~ 1", data=data, S=S, Scor="rho")


def _hsls(**kw):
    return lambda: smf.mixmeta("b1 + b2 + b3 ~ 1", data=datasets.load_hsls(),
                               S=HSLS_S, **kw)


SINGLE_LEVEL = {
    "bcg_fixed": _bcg("logor ~ 1", method="fixed"),
    "bcg_ml": _bcg("logor ~ 1", method="ml"),
    "bcg_reml": _bcg("logor ~ 1"),
    "bcg_mm": _bcg("logor ~ 1", method="mm"),
    "bcg_vc": _bcg("logor ~ 1", method="vc"),
    "bcg_reg_ml": _bcg("logor ~ ablat", method="ml"),
    "bcg_reg_reml": _bcg("logor ~ ablat"),
    "bcg_reg_alloc_reml": _bcg("logor ~ ablat + year + alloc"),
    "bcg_biv_ml": _bcg_bivariate,
    "berkey_fixed": _berkey_model("PD + AL ~ year", method="fixed"),
    "berkey_vc": _berkey_model("PD + AL ~ year", method="vc",
                               vc_adjust=False),
    "berkey_vc_adj": _berkey_model("PD + AL ~ year", method="vc"),
    "berkey_ml": _berkey_model("PD + AL ~ year", method="ml"),
    "berkey_reml": _berkey_model("PD + AL ~ pubyear"),
    "berkey_mm": _berkey_model("PD + AL ~ year", method="mm"),
    "fibrinogen_reml": _fibrinogen(),
    "fibrinogen_ml_diag": _fibrinogen(method="ml", bscov="diag"),
    "smoking_unstr": _smoking(),
    "smoking_prop": _smoking(bscov="prop", psi_fix=np.eye(3) + 1),
    "smoking_diag": _smoking(bscov="diag"),
    "smoking_hcs": _smoking(bscov="hcs"),
    "smoking_cs": _smoking(bscov="cs"),
    "smoking_id": _smoking(bscov="id"),
    "smoking_cor": _smoking(bscov="cor", psi_fix=PSI_COR),
    "p53_scor": lambda: smf.mixmeta("y1 + y2 ~ 1", data=datasets.load_p53(),
                                    S=["V1", "V2"], Scor=0.95),
    "hyp_reml": _hyp("sbp + dbp ~ 1"),
    "hyp_reml_scor": _hyp_scor,
    "hyp_mm": _hyp("sbp + dbp ~ 1", method="mm"),
    "hyp_reg_reml": _hyp("sbp + dbp ~ ish"),
    "hyp_reg_mm": _hyp("sbp + dbp ~ ish", method="mm"),
    "hsls_fixed": _hsls(method="fixed"),
    "hsls_mm": _hsls(method="mm"),
    "hsls_reml": _hsls(),
}


def r_style_names(names):
    """Our coefficient names spelled as R spells them (factor levels)."""
    import re
    names = [re.sub(r"C\((\w+)\)\[(?:T\.)?([^\]]+)\]", r"factor(\1)\2", n)
             for n in names]
    return [re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", n) for n in names]


# --------------------------------------------------------------- multilevel
def har1_within_cov(data, group, time, variance, rho):
    """
    Heterogeneous AR(1) within-group covariance, built here (issue 4):
    sd from the variance column, correlation ``rho**|i - j|`` over the
    positions of the time points, restricted to each group's rows in row
    order.  Returns a dict keyed by group label.
    """
    times = np.sort(data[time].unique())
    position = {t: i for i, t in enumerate(times)}
    out = {}
    for label, rows in data.groupby(group, sort=True):
        pos = rows[time].map(position).to_numpy()
        sd = np.sqrt(rows[variance].to_numpy())
        out[label] = np.outer(sd, sd) * rho ** np.abs(pos[:, None]
                                                     - pos[None, :])
    return out


def reference_addS(name):
    """The per-group matrices R was given, keyed by group label."""
    from reference_cases import case
    ref = case(name)
    labels = ref.addSlist_order
    return dict(zip(labels, ref.addSlist)) if labels is not None \
        else list(ref.addSlist)


def _school():
    data = datasets.load_school()
    data["yearcen"] = data.year - data.year.mean()
    data["yearcen2"] = data.year - data.groupby("district").year.mean().mean()
    return data


def _thrombolytic():
    data = datasets.load_thrombolytic()
    data["subtrial"] = np.arange(1, len(data) + 1)
    return data


def _gliomas():
    data = datasets.load_gliomas()
    data["unit"] = np.arange(1, len(data) + 1)
    return data.dropna(subset=["logOR"])


def _gliomas_addS():
    return har1_within_cov(_gliomas(), "study", "time", "logORvar", 0.61)


def _dbs_wide(**kw):
    def build():
        data = datasets.load_dbs()
        effects = ["eff_month3", "eff_month6", "eff_month12", "eff_long"]
        variances = ["var_month3", "var_month6", "var_month12", "var_long"]
        return smm.MixMeta(data[effects], None,
                           S=data[variances].to_numpy(), **kw)
    return build


def _dbs_long():
    wide = datasets.load_dbs()
    parts = []
    for t, (eff, var) in enumerate([("eff_month3", "var_month3"),
                                    ("eff_month6", "var_month6"),
                                    ("eff_month12", "var_month12"),
                                    ("eff_long", "var_long")], start=1):
        parts.append(pd.DataFrame({"author": wide.author, "time": t,
                                   "eff": wide[eff], "var": wide[var]}))
    long = pd.concat(parts).sort_values(["author", "time"], kind="stable")
    return long.dropna(subset=["eff"]).reset_index(drop=True)


def _alcohol():
    return datasets.load_alcohol().dropna(subset=["se"]).reset_index(
        drop=True)


def _alcohol_se2():
    return _alcohol().se.to_numpy() ** 2


MULTILEVEL = {
    "school_ml_1level": lambda: smf.mixmeta(
        "effect ~ 1", data=_school(), S="var", random="~ 1 | study",
        method="ml"),
    "school_ml_reg": lambda: smf.mixmeta(
        "effect ~ yearcen", data=_school(), S="var", random="~ 1 | study",
        method="ml"),
    "school_ml_district": lambda: smf.mixmeta(
        "effect ~ 1", data=_school(), S="var", random="~ 1 | district",
        method="ml"),
    "school_ml_2level": lambda: smf.mixmeta(
        "effect ~ 1", data=_school(), S="var",
        random="~ 1 | district/study", method="ml"),
    "school_ml_2level_reg": lambda: smf.mixmeta(
        "effect ~ yearcen2", data=_school(), S="var",
        random=["~ 1 | district", "~ 1 | study"], method="ml"),
    "school_reml_2level": lambda: smf.mixmeta(
        "effect ~ 1", data=_school(), S="var",
        random={"district": "~ 1", "study": "~ 1"}),
    "thrombolytic_fixed": lambda: smf.mixmeta(
        "absrisk ~ 1", data=_thrombolytic(), S="var", method="fixed"),
    "thrombolytic_reml": lambda: smf.mixmeta(
        "absrisk ~ 1", data=_thrombolytic(), S="var",
        random="~ 1 | subtrial"),
    "thrombolytic_reml_2level": lambda: smf.mixmeta(
        "absrisk ~ 1", data=_thrombolytic(), S="var",
        random="~ 1 | trial/subtrial"),
    "thrombolytic_reml_2level_reg": lambda: smf.mixmeta(
        "absrisk ~ time2treat", data=_thrombolytic(), S="var",
        random="~ 1 | trial/subtrial"),
    "thrombolytic_reml_2level_inv": lambda: smf.mixmeta(
        "absrisk ~ time2treat + I(1/time2treat)", data=_thrombolytic(),
        S="var", random="~ 1 | trial/subtrial"),
    "gliomas_diag": lambda: smf.mixmeta(
        "logOR ~ 0 + C(time)", data=_gliomas(), S="logORvar",
        random="~ 0 + C(time) | study", bscov="diag"),
    "gliomas_cs_fixed0": lambda: smf.mixmeta(
        "logOR ~ 0 + C(time)", data=_gliomas(), S="logORvar",
        random="~ 1 | study/unit", bscov=["unstr", "fixed"],
        psi_fix={"unit": 0}),
    "gliomas_har1S_diag": lambda: smf.mixmeta(
        "logOR ~ 0 + C(time)", data=_gliomas(), addS=_gliomas_addS(),
        random="~ 0 + C(time) | study", bscov="diag"),
    "gliomas_har1S_unstr": lambda: smf.mixmeta(
        "logOR ~ 0 + C(time)", data=_gliomas(), addS=_gliomas_addS(),
        random="~ 0 + C(time) | study", bscov="unstr"),
    "gliomas_har1S_har1": lambda: smf.mixmeta(
        "logOR ~ 0 + C(time)", data=_gliomas(), addS=_gliomas_addS(),
        random="~ 0 + C(time) | study", bscov="har1"),
    "gliomas_slope_ml": lambda: smf.mixmeta(
        "logOR ~ time", data=_gliomas(), addS=_gliomas_addS(),
        random="~ I(time - 15) | study", bscov="diag", method="ml"),
    "dbs_diag": _dbs_wide(bscov="diag"),
    "dbs_har1": _dbs_wide(bscov="har1"),
    "dbs_long_id": lambda: smf.mixmeta(
        "eff ~ 0 + C(time)", data=_dbs_long(), S="var",
        random="~ 0 + C(time) | author", bscov="id"),
    "dbs_long_har1S": lambda: smf.mixmeta(
        "eff ~ 0 + C(time)", data=_dbs_long(),
        addS=har1_within_cov(_dbs_long(), "author", "time", "var", 0.97),
        random="~ 0 + C(time) | author", bscov="har1"),
    "alcohol_nocor": lambda: smf.mixmeta(
        "logrr ~ 0 + dose", data=_alcohol(), S=_alcohol_se2(),
        random="~ 0 + dose | id", method="ml"),
    "alcohol_lin": lambda: smf.mixmeta(
        "logrr ~ 0 + dose", data=_alcohol(),
        addS=reference_addS("alcohol_lin"), random="~ 0 + dose | id",
        method="ml"),
    "alcohol_fixed": lambda: smf.mixmeta(
        "logrr ~ 0 + dose", data=_alcohol(),
        addS=reference_addS("alcohol_lin"), random="~ 1 | id",
        bscov="fixed", psi_fix=0, method="ml"),
}
