"""
The package is a pipeline of stages, each importing only from the stages
above it:

    structures -> design -> kernels -> fitting -> plots -> results -> model

(``plots`` draws what a results object hands it and imports no results
code, so that results methods can call it; ``model.py`` wires the stages
together and so comes after them (its mixins ``model_data``, the formula
constructor, init keywords and pickling, and ``model_likelihood``, the
profiled objective of theta, rank just before it), followed only by
``simulation.py``, which simulates from a model it wires, ``twostage``,
which builds models from first-stage fits, and ``many``, which fits many problems and builds a model
for any one of them; both show their progress through ``progress``, a small
module of its own rank between ``model`` and them; ``network`` builds
network contrasts and fits the inconsistency model, a workflow of the same
rank; ``effectsize`` computes effect sizes and their (co)variances from raw
data, the inputs of a design, and so ranks just after ``design``;
``datasets`` stands apart and imports nothing of the package).  These tests read the imports of every
module, so that the rule keeps holding.
"""
import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "statsmodels_mixmeta"
STAGES = ["structures", "design", "kernels", "fitting", "plots", "results"]
# what may import what: a stage's rank; the top-level modules wire them
RANK = {name: rank for rank, name in enumerate(STAGES)}
RANK.update({"effectsize": RANK["design"] + 0.5,
             "network": len(STAGES) + 1,
             "model": len(STAGES), "model_data": len(STAGES) - 0.5,
             "model_likelihood": len(STAGES) - 0.5,
             "progress": len(STAGES) + 0.5,
             "simulation": len(STAGES) + 1,
             "twostage": len(STAGES) + 1, "many": len(STAGES) + 1,
             "__init__": len(STAGES) + 2, "__main__": len(STAGES) + 2})
# third-party libraries a stage must not touch
FORBIDDEN = {"kernels": {"pandas", "patsy", "formulaic"},
             "fitting": {"pandas", "patsy", "formulaic"},
             "structures": {"pandas", "patsy", "formulaic"},
             "effectsize": {"patsy", "formulaic"}}


def _modules():
    return sorted(p for p in PACKAGE.rglob("*.py"))


def _stage(path):
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return parts[0]


def _imported(path):
    """Package stages and top-level libraries imported by ``path``."""
    tree = ast.parse(path.read_text())
    own = path.relative_to(PACKAGE).with_suffix("").parts
    inner, outer = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top, *rest = alias.name.split(".")
                if top == "statsmodels_mixmeta":
                    inner.add(rest[0] if rest else "__init__")
                else:
                    outer.add(top)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                top, *rest = (node.module or "").split(".")
                if top == "statsmodels_mixmeta":
                    if rest:
                        inner.add(rest[0])
                    else:
                        inner.update(a.name for a in node.names)
                else:
                    outer.add(top)
                continue
            # relative: resolve against the module's own package
            base = list(own[:-1])[:len(own) - node.level]
            target = base + (node.module.split(".") if node.module else [])
            if target:
                inner.add(target[0])
            else:
                inner.update(a.name for a in node.names)
    return inner, outer


@pytest.mark.parametrize(
    "path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_follow_the_pipeline(path):
    stage = _stage(path)
    inner, outer = _imported(path)
    if stage == "datasets":
        assert inner <= {"datasets"}, inner
        return
    assert stage in RANK, f"{path} is in no stage of {sorted(RANK)}"
    for other in inner - {stage}:
        if other == "datasets":
            assert stage in ("__init__", "__main__", "model"), other
            continue
        assert other in RANK, f"{path} imports {other}, in no stage"
        assert RANK[other] < RANK[stage], (
            f"{path.relative_to(PACKAGE)} (stage {stage}) imports {other}, "
            "a later stage")
    assert not (outer & FORBIDDEN.get(stage, set())), (
        f"{path} imports {outer & FORBIDDEN[stage]}")


@pytest.mark.parametrize(
    "path", _modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_states_its_job(path):
    doc = ast.get_docstring(ast.parse(path.read_text()))
    assert doc and len(doc.split()) >= 5, f"{path} has no module docstring"


def test_the_reader_sees_a_violation():
    # the rule can fail: a kernel importing the results stage is caught
    source = "from ..results import core\nimport pandas\n"
    fake = PACKAGE / "kernels" / "_fake_for_test.py"
    tree_paths = (fake.relative_to(PACKAGE).with_suffix("").parts)
    assert tree_paths[0] == "kernels"
    fake.write_text(source)
    try:
        inner, outer = _imported(fake)
    finally:
        fake.unlink()
    assert "results" in inner and RANK["results"] > RANK["kernels"]
    assert "pandas" in outer & FORBIDDEN["kernels"]



def test_benchmark_scripts_run_as_scripts(tmp_path):
    """``python benchmarks/x.py`` puts the script's folder first on
    ``sys.path``, where a ``benchmarks/coverage.py`` once hid the
    ``coverage`` module that numba probes for on import: the Table 6 study
    crashed as a script although its tests, which import it, passed.  Run
    it as a script, on two data sets a scenario."""
    import subprocess
    import sys
    out = subprocess.run(
        [sys.executable, str(PACKAGE.parent / "benchmarks" / "table6.py"),
         "--n-sim", "2", "--output", str(tmp_path / "t6.json")],
        capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "t6.json").exists()
