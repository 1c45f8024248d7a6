"""The package layout holds: stages import only earlier stages, and a non-editable install runs from anywhere."""
from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conftest import ROOT

# The journey, in order (DESIGN.md, "Layout"): a module may import its own stage and the stages before it.
STAGES = ("data_tools", "models", "recipe", "train", "infer", "report", "publish")
SHARED = ("fileio", "versions")           # top-level helpers every stage may use; they import only data_tools


def _stage(module: str) -> str | None:
    """The stage of a dotted module name (`internvl_kit.train.cli` -> train), None outside the project."""
    parts = module.split(".")
    if parts[0] == "data_tools":
        return "data_tools"
    if parts[0] != "internvl_kit" or len(parts) == 1:
        return None
    return parts[1] if parts[1] in STAGES else ("shared" if parts[1] in SHARED else parts[1])


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path, here: str | None = None) -> list[tuple[int, str]]:
    """Every import in the file (module `here`), function-level ones included, as absolute dotted names."""
    here = here or _module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            # `from .. import train` names a module: the imported names count as (maybe) modules too
            out += [(node.lineno, f"{mod}.{a.name}" if mod else a.name) for a in node.names]
    return out


def _project_files() -> list[Path]:
    return sorted([*(ROOT / "internvl_kit").rglob("*.py"), *(ROOT / "data_tools").rglob("*.py")])


def test_the_stage_packages_exist():
    pkg = ROOT / "internvl_kit"
    for stage in ("models", "recipe", "train", "infer", "report", "publish"):
        assert (pkg / stage / "__init__.py").is_file(), stage
    flat = sorted(p.stem for p in pkg.glob("*.py") if p.stem != "__init__")
    assert flat == sorted(SHARED), f"modules left at the top of internvl_kit: {flat}"


def test_no_stage_imports_a_later_stage():
    bad, seen = [], 0
    for path in _project_files():
        own = _stage(_module_name(path))
        for line, mod in _imports(path):
            target = _stage(mod)
            if target is None:
                continue
            seen += 1
            where = f"{path.relative_to(ROOT)}:{line} imports {mod}"
            if own == "shared":
                if target not in ("shared", "data_tools"):
                    bad.append(f"{where} (fileio/versions import no stage but data_tools)")
            elif target == "shared":
                continue
            elif target not in STAGES:
                bad.append(f"{where} (not a stage: {target})")
            elif STAGES.index(target) > STAGES.index(own):
                bad.append(f"{where} ({own} comes before {target})")
    assert seen > 50, "the import scan found almost nothing: it is broken"
    assert not bad, "\n".join(bad)


def test_the_scan_sees_a_backward_import(tmp_path):
    """The checker itself catches an arrow running back up (a models module importing train)."""
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from ..train import launch\n")
    found = [m for _, m in _imports(probe, "internvl_kit.models.probe")]
    assert "internvl_kit.train.launch" in found and _stage("internvl_kit.train.launch") == "train"


@pytest.mark.e2e
def test_non_editable_install_runs_from_another_directory(tmp_path):
    """`pip install .` (a real wheel, package data included) into a fresh venv; the console script runs a
    dry run from a directory that is not the checkout. The fresh venv borrows this one's dependencies
    through a path file, so nothing is downloaded; the toolkit itself comes only from the wheel."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    vpy = venv / "bin" / "python"
    site = subprocess.run([str(vpy), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    # our dependencies, as plain path entries: the editable finder's .pth files there are not processed
    Path(site, "borrowed-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    src = tmp_path / "src"          # a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".git", ".venv", "output", "__pycache__",
                                                             "*.egg-info", "build"))
    # pip itself comes from the borrowed path; it installs into the fresh venv (its sys.prefix)
    inst = subprocess.run([str(vpy), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--ignore-installed", str(src)], cwd=tmp_path, capture_output=True, text=True)
    assert inst.returncode == 0, inst.stdout + inst.stderr
    where = subprocess.run([str(vpy), "-c", "import internvl_kit.train.cli as m; print(m.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True)
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(site), f"not the installed copy: {where.stdout}"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(src)              # nothing of the source tree is left to lean on
    recipe = ROOT / "recipes" / "tiny-demo.yaml"
    run = subprocess.run([str(venv / "bin" / "internvl-train"), str(recipe), "--dry-run"], cwd=elsewhere,
                         capture_output=True, text=True, timeout=600,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert run.returncode == 0, run.stdout + run.stderr
    assert "swift sft" in run.stdout and "--model" in run.stdout, run.stdout
    # the report's stylesheet and script are package data: they travel in the wheel
    (elsewhere / "run").mkdir()
    (elsewhere / "run" / "logging.jsonl").write_text('{"loss": 2.0, "global_step/max_steps": "1/2"}\n'
                                                     '{"loss": 1.0, "global_step/max_steps": "2/2"}\n')
    rep = subprocess.run([str(vpy), "-m", "internvl_kit.report", "run"], cwd=elsewhere, capture_output=True, text=True,
                         env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert rep.returncode == 0, rep.stdout + rep.stderr
    assert "drawChart" in (elsewhere / "run" / "report.html").read_text()

