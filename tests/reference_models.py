"""
The Python calls that correspond to the R calls of the reference cases.

Each entry builds the (unfitted) model of one case of
``tests/results/mixmeta_reference.json``; the R call it mirrors is the
case's ``call`` (see ``tests/results/make_reference.R``).
"""
import numpy as np

import statsmodels.formula.api as smf
import statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
from statsmodels_mixmeta.covariance import inputcov

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
    return [re.sub(r"(\w+)\[T\.([^\]]+)\]", r"\1\2", n) for n in names]
