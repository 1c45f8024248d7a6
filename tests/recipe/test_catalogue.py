"""Every model size has a recipe; the catalogue lists them; the README's copy is current."""
from __future__ import annotations

from conftest import ROOT, run_cli
from internvl_kit.recipe import catalogue
from internvl_kit.models import family
from internvl_kit.recipe import load_recipe


def test_every_size_has_a_recipe_with_the_right_model_and_template():
    for size in family.SIZES:
        path = ROOT / "recipes" / f"{size.key}-lora.yaml"
        assert path.is_file(), f"no recipe for {size.family}-{size.size}"
        r = load_recipe(path)
        row = family.find(r.data["model"])
        assert row is not None and row.spec is size
        assert (r.data["model_type"], r.data["template"]) == (row.model_type, row.template)
        first = path.read_text().splitlines()[:6]
        assert first[0].startswith("# ") and any("python train.py recipes/" in line for line in first)
        if size.total_params_b >= 38:
            assert r.data.get("deepspeed") == "zero3"


def test_family_table_covers_every_listed_id():
    ids = {m.id for m in family.models()}
    for needed in ("OpenGVLab/InternVL3-78B-hf", "OpenGVLab/InternVL3_5-30B-A3B-HF", "OpenGVLab/InternVL3_5-8B-MPO",
                   "OpenGVLab/InternVL3_5-GPT-OSS-20B-A4B-Preview", "OpenGVLab/InternVL3-9B-Instruct"):
        assert needed in ids
    assert family.find("/data/models/InternVL3_5-8B").id == "OpenGVLab/InternVL3_5-8B"   # a local dir by name
    spec = family.find("OpenGVLab/InternVL3_5-241B-A28B").spec
    assert abs(spec.total_params_b - 240.7) < 1.0 and spec.active_b == 28.0    # report: 240.7B (A28B)
    out = run_cli("-m", "internvl_kit.models.family")
    assert out.returncode == 0 and "InternVL3_5-1B-HF" in out.stdout


def test_list_prints_the_catalogue():
    out = run_cli("train.py", "--list")
    assert out.returncode == 0
    assert "recipes/internvl3_5-241b-a28b-lora.yaml" in out.stdout and "zero3" in out.stdout


def test_readme_catalogue_is_current():
    readme = (ROOT / "README.md").read_text()
    start, end = readme.index(catalogue.README_START), readme.index(catalogue.README_END)
    embedded = readme[start + len(catalogue.README_START):end].strip()
    assert embedded == catalogue.markdown(), \
        "README catalogue is stale: regenerate with `python train.py --list --markdown`"
