"""
``python -m statsmodels_mixmeta``: fit two of R mixmeta's examples on the
data that ship with the package and print their summaries.

1. Meta-regression of the BCG trials: log odds ratio on absolute latitude,
   REML, as R's ``mixmeta(logor ~ ablat, logorvar, data=bcg)``.
2. Bivariate meta-regression of the periodontal trials (Berkey et al. 1998):
   probing depth and attachment level on publication year minus 1983, ML, as
   R's ``mixmeta(cbind(PD, AL) ~ year, S=berkey98[5:7], data=berkey98,
   method="ml")``.
"""
from . import datasets
from .model import MixMeta


def main():
    """Fit the BCG and berkey98 examples and print their summaries."""
    bcg = MixMeta.from_formula("logor ~ ablat", data=datasets.load_bcg(),
                               S="logorvar").fit()
    print(bcg.summary())

    berkey = datasets.load_berkey98().set_index("trial")
    berkey["year"] = berkey["pubyear"] - 1983
    periodontal = MixMeta.from_formula(
        "PD + AL ~ year", data=berkey, S=["var_PD", "cov_PD_AL", "var_AL"],
        method="ml").fit()
    print()
    print(periodontal.summary())


if __name__ == "__main__":
    main()
