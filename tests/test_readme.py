"""
README.rst cannot rot: its Python blocks run, in order, in one namespace; the
numbers its prose quotes are asserted; ``python -m statsmodels_mixmeta`` runs;
and the test command it shows is the one ``.ci/run`` runs.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.rst"
CI_RUN = ROOT / ".ci" / "run"

DIRECTIVE = re.compile(r"^\.\. code-block:: (\w+)\s*$")


def code_blocks(language):
    """The bodies of README's ``.. code-block:: <language>`` blocks, in order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    blocks = []
    i = 0
    while i < len(lines):
        match = DIRECTIVE.match(lines[i])
        i += 1
        if not match or match.group(1) != language:
            continue
        body = []
        while i < len(lines) and (not lines[i].strip()
                                  or lines[i].startswith(" ")):
            body.append(lines[i])
            i += 1
        text = "\n".join(body).strip("\n")
        indent = min(len(line) - len(line.lstrip())
                     for line in text.splitlines() if line.strip())
        blocks.append("\n".join(line[indent:] for line in text.splitlines()))
    return blocks


@pytest.fixture(scope="module")
def namespace():
    """Run every Python block of README.rst in order, in one namespace."""
    blocks = code_blocks("python")
    assert len(blocks) >= 10
    ns = {"__name__": "__readme__"}
    for number, block in enumerate(blocks, 1):
        code = compile(block, f"README.rst python block {number}", "exec")
        exec(code, ns)
    return ns


def test_python_blocks_run(namespace):
    for name in ("meta", "res", "biv", "fits", "arr", "p53_fit", "state"):
        assert name in namespace, f"README no longer defines {name!r}"


def test_numbers_quoted_in_prose(namespace):
    text = README.read_text(encoding="utf-8")
    res, meta = namespace["res"], namespace["meta"]
    # "falls by 0.0315 per degree ... (standard error 0.0063)"
    assert "0.0315" in text and "0.0063" in text
    assert res.params["ablat"] == pytest.approx(-0.0315338, abs=1e-6)
    assert res.bse["ablat"] == pytest.approx(0.0063, abs=5e-5)
    # "drops from 0.338 to 0.0504"
    assert "0.338 to 0.0504" in text
    assert meta.psi.iloc[0, 0] == pytest.approx(0.338, abs=5e-4)
    assert res.psi.iloc[0, 0] == pytest.approx(0.0504, abs=5e-5)
    # smoking: "31 of 72 values are observed"
    assert "31 of 72 values" in text
    smoking = namespace["fits"]["unstr"]
    assert (smoking.nobs, smoking.n_groups) == (31, 24)
    # school, REML: "63.3 % of the variance between districts and 31.9 %"
    assert "63.3 % of the" in text and "31.9 % between" in text
    het = namespace["het"]["value"]
    assert 100 * het["I2[district]"]["effect"] == pytest.approx(63.3, abs=0.05)
    assert 100 * het["I2[study]"]["effect"] == pytest.approx(31.9, abs=0.05)


def test_claims_in_comments(namespace):
    biv, arr, model = namespace["biv"], namespace["arr"], namespace["model"]
    assert list(biv.params.index) == ["PD:Intercept", "PD:year",
                                      "AL:Intercept", "AL:year"]
    assert list(arr.model.data.param_names) == ["y1:const", "y1:x1",
                                                "y2:const", "y2:x1"]
    np.testing.assert_allclose(np.asarray(arr.params),
                               np.asarray(biv.params), rtol=1e-8)
    assert model.loglike(biv.theta) == pytest.approx(biv.llf, abs=1e-12)
    assert np.all(np.abs(model.score(biv.theta)) < 1e-6)
    assert namespace["state"].llf < biv.llf


def test_fit_many_blocks(namespace):
    pairs = namespace["pairs"]
    assert pairs.params.shape == (1000, 2) and pairs.psi.shape == (1000, 2, 2)
    assert pairs.fitted.all()
    # "print(np.array_equal(lazy_pairs.psi.compute(), pairs.psi))  # True"
    lazy = namespace["lazy_pairs"]
    assert type(lazy.psi).__module__.startswith("dask")
    np.testing.assert_array_equal(np.asarray(lazy.psi), pairs.psi)
    np.testing.assert_array_equal(np.asarray(lazy.params), pairs.params)


def test_multilevel_refit_block(namespace):
    # "print(sims.params.shape, sims.psi.shape, sims.converged.all())
    #  # (500, 3) (500, 2, 3, 3) True"
    sims = namespace["sims"]
    assert sims.params.shape == (500, 3)
    assert sims.psi.shape == (500, 2, 3, 3)
    assert sims.converged.all()
    # data set 0 equals its own single fit (a full MixMeta model)
    single = sims[0]
    np.testing.assert_allclose(single.params, sims.params[0], rtol=1e-6)
    assert single.llf == pytest.approx(sims.llf[0], abs=1e-8)
    # Wald coverage over 500 data sets: near 0.95 (the paper's m = 10
    # figures are 0.928-0.940; MC SE here about 0.01)
    cover = (np.abs(sims.params[:, 0] / sims.bse[:, 0]) < 1.96).mean()
    assert 0.89 < cover < 0.97


def test_network_block(namespace):
    # "print(consistency.params)      # fits["prop"].params, to 1e-5"
    net, consistency = namespace["net"], namespace["consistency"]
    np.testing.assert_allclose(np.asarray(consistency.params),
                               np.asarray(namespace["fits"]["prop"].params),
                               rtol=1e-5)
    assert net.info["augmented"].sum() == 5 and len(net.frame) == 24
    assert net.design.loc[2] == "BCD" and net.S[1, 0, 0] > 1111


def test_simulation_block(namespace):
    draws, same, boot = (namespace["draws"], namespace["same"],
                         namespace["boot"])
    assert draws.shape == (1000, 13, 1)
    np.testing.assert_allclose(same, draws, rtol=0, atol=1e-12)
    assert len(boot) == 200 and boot["converged"].all()


def test_main_module_runs(tmp_path):
    out = subprocess.run([sys.executable, "-m", "statsmodels_mixmeta"],
                         cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    assert "MixMeta" in out.stdout
    assert "-0.0315" in out.stdout                      # bcg: ablat
    assert "PD" in out.stdout and "AL" in out.stdout    # berkey98


def test_test_command_is_what_ci_runs():
    ci_lines = [line.strip() for line in CI_RUN.read_text().splitlines()
                if line.strip().startswith("python ")]
    readme_test = [block for block in code_blocks("bash") if "pytest" in block]
    assert len(readme_test) == 1
    assert readme_test[0] == " && ".join(ci_lines)


def test_set_up_has_two_one_line_commands():
    text = README.read_text(encoding="utf-8")
    set_up = text[text.index("\nSet-up\n"):text.index("\nA short tour\n")]
    commands = [line.strip() for line in set_up.splitlines()
                if line.startswith("    ")]
    assert commands == [
        "python -m pip install . && python -m statsmodels_mixmeta",
        'python -m pip install -q -e ".[test,formulaic,plot,dask,fast]" '
        "&& python -m pytest -q tests",
    ]
    # .ci/run runs exactly the README's test command, extras included
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    ci_lines = [line for line in ci.splitlines()
                if line.startswith("python ")]
    assert " && ".join(ci_lines) == commands[1]


def test_influence_claims(namespace):
    # "the Vandiviere trial (row 6) has the largest residual in absolute
    # value and Cook's distance after TPT Madras (row 7) ... the residual
    # tau2 falls from 0.050 to 0.018"
    text = README.read_text(encoding="utf-8")
    assert "from 0.050\nto 0.018" in text or "from 0.050 to 0.018" in text
    frame = namespace["influence"].summary_frame()
    assert frame["student_resid"].abs().idxmax() == 6
    assert list(frame["cooks_d"].nlargest(2).index) == [7, 6]
    assert frame["hat_diag"].idxmax() == 7
    assert namespace["res"].psi.iloc[0, 0] == pytest.approx(0.050, abs=5e-4)
    assert frame.loc[6, "tau2_del"] == pytest.approx(0.018, abs=5e-4)


def test_coverage_claims_are_the_benchmark_json():
    """The README's Table 6 coverage figures are the ranges over the
    scenarios of ``benchmarks/results/coverage.json``."""
    import json
    report = json.loads((README.parent / "benchmarks" / "results"
                         / "coverage.json").read_text())
    assert report["design"]["n_sim"] == 2000
    text = " ".join(README.read_text(encoding="utf-8").split())
    for name, label in [("wald_z", "Wald z intervals for the first "
                         "outcome's mean cover"),
                        ("kenward_roger", "Kenward–Roger's"),
                        ("cr2_t", "CR2 + t's")]:
        cover = [s["coverage"][name]["coverage_beta1"]
                 for s in report["scenarios"]]
        claim = f"{label} {min(cover):.3f}–{max(cover):.3f}"
        assert claim in text, claim


def test_inconsistency_block(namespace):
    network_test = namespace["network_test"]
    # "print(network_test)        # chi2(7) = 5.1116, p = 0.6463; ..."
    assert repr(network_test) == ("<InconsistencyTest: chi2(7) = 5.1116, "
                                  "p = 0.6463; 8 designs, 10 coefficients>")
    assert network_test.df == 7 and round(network_test.pvalue, 3) == 0.646
    assert len(network_test.inconsistency.params) == 10
    assert "ACD: D vs A" in network_test.designs.deviation_names
    assert "BCD: D vs B" in network_test.designs.deviation_names
    # "print(np.allclose(network_test.consistency.params, ...))  # True"
    np.testing.assert_allclose(network_test.consistency.params,
                               namespace["consistency"].params, rtol=1e-8)


def test_effect_size_block(namespace):
    # "True: the shipped log risk ratios"; "1/2 added to Ames's four cells"
    bcg, es = namespace["bcg"], namespace["es"]
    np.testing.assert_allclose(es["yi"], bcg["logrr"], atol=1e-10)
    assert namespace["rr_fit"].params.index.tolist() == ["Intercept", "ablat"]
    es_or = namespace["es_or"]
    assert list(es_or.index) == ["Ames", "Bern", "Cork"]
    assert es_or.loc["Ames", "yi"] == pytest.approx(
        np.log(0.5 * 27.5 / (30.5 * 3.5)), abs=1e-12)
    assert es_or.loc["Bern", "vi"] == pytest.approx(
        1 / 4 + 1 / 36 + 1 / 9 + 1 / 32, abs=1e-12)


def test_correlated_outcomes_block(namespace):
    eff, fit = namespace["corr_eff"], namespace["corr_fit"]
    text = README.read_text(encoding="utf-8")
    # "for trial T1, 0.4 x (...) = 0.0472"
    assert "= 0.0472" in text
    assert eff.S[0, 0, 1] == pytest.approx(0.0472, abs=5e-5)
    assert eff.S_columns == ["S_death_death", "S_death_admit",
                             "S_admit_admit"]
    assert list(fit.params.index) == ["death:Intercept", "admit:Intercept"]
    assert fit.nobs == 12
