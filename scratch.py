import statsmodels.formula.api as smf, statsmodels_mixmeta as smm
from statsmodels_mixmeta import datasets
data = datasets.load_berkey98(); data["year"] = data["pubyear"] - 1983
m = smf.mixmeta("PD + AL ~ year", data=data, S=["var_PD", "cov_PD_AL", "var_AL"])
print(m.fit(use_t=True, df_method="kenward-roger").summary())
print(m.fit(use_t=True).summary().tables[0])
print(m.fit().summary().tables[0])
r = m.fit(use_t=True, df_method="kenward-roger")
print(r.get_prediction().summary_frame().head())
print(r.blup(pi=True).head())
