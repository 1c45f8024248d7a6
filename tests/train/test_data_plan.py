"""The data plan's numbers against swift's own loader, on local files (in-process), and the registry checks
that need no hub: unknown subsets and splits, and split views leaving the plain id as swift registers it."""
from __future__ import annotations

import json

import pytest
from PIL import Image


def _rows(tmp_path, distinct: int, copies: int):
    rows = []
    for i in range(distinct):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (40 + i, 30), (i * 7 % 255, 90, 160)).save(path)
        rows.append({"messages": [{"role": "user", "content": "<image>Which?"},
                                  {"role": "assistant", "content": f"number {i}"}], "images": [str(path)]})
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows * copies))
    return data


def test_a_local_file_gets_swifts_split_sampling_and_the_leak_warning(tmp_path, tiny_model):
    from swift.dataset import load_dataset
    from internvl_kit.train import data_plan
    data = _rows(tmp_path, 20, 3)
    recipe = {"model": str(tiny_model), "template": "internvl_hf", "max_length": 4096, "num_train_epochs": 2,
              "dataset": [f"{data}#90"], "split_dataset_ratio": 0.3}
    plan, findings = data_plan.make(recipe, {}, "r.yaml")
    assert findings == []
    train, val = load_dataset([f"{data}#90"], split_dataset_ratio=0.3, shuffle=True, seed=42)
    key = lambda r: (r["messages"][-1]["content"])  # noqa: E731 - one image per answer here
    assert (plan.training, plan.held_out) == (len(train), len(val)) == (90 - 18, 18)
    (entry,) = plan.entries
    assert (entry.rows, entry.unique, entry.parts) == (60, 20, [{"subset": "", "split": "file", "rows": 60}])
    overlap = len({key(r) for r in val} & {key(r) for r in train})
    assert plan.overlap == overlap > 0
    assert any(f"{overlap} of the 18 held-out rows also occur in training" in w for w in plan.warnings)
    assert any("only 18 row(s) held out" in w for w in plan.warnings)
    assert plan.effective_epochs == round(2 * len(train) / len({key(r) for r in train}), 2)
    assert plan.image_tag == "<image>"                 # the rows write `<image>Which?`: infer.py will too


def test_the_plan_records_how_training_rows_write_the_image_tag():
    from internvl_kit.train.data_plan import image_tag
    row = lambda text: {"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": "a"}]}  # noqa
    assert image_tag(row("<image>\nWhat?")) == "<image>\n" and image_tag(row("<image>What?")) == "<image>"
    assert image_tag(row("<image><image>\nBoth?")) == "<image>\n" and image_tag(row("no image")) is None


def test_rows_longer_than_max_length_are_counted_as_swift_drops_them(tmp_path, tiny_model):
    from internvl_kit.train import data_plan
    data = _rows(tmp_path, 6, 1)
    recipe = {"model": str(tiny_model), "template": "internvl_hf", "max_length": 20, "dataset": [str(data)],
              "val_dataset": [str(data)], "split_dataset_ratio": 0}
    plan, _ = data_plan.make(recipe, {}, "r.yaml")
    assert plan.too_long_training == 6 and plan.tokens["max"] > 20
    assert any("6 training row(s) are longer than max_length 20: swift drops them" in w for w in plan.warnings)
    assert plan.overlap == 6 and plan.held_out_from == "val_dataset"


def test_an_unknown_subset_lists_the_registered_ones_before_any_download():
    from internvl_kit.train import swift_data
    with pytest.raises(swift_data.DataLoadError) as e:
        swift_data.load_entry("AI-ModelScope/LaTeX_OCR:handwriting", {})
    assert str(e.value) == ("AI-ModelScope/LaTeX_OCR:handwriting: AI-ModelScope/LaTeX_OCR has no subset 'handwriting' "
                            "in swift's registration; its subsets: default, human_handwrite, human_handwrite_print, "
                            "synthetic_handwrite, small")


def test_split_views_are_swift_datasets_and_leave_the_plain_id_alone():
    from swift.dataset import DATASET_MAPPING
    from swift.dataset.dataset_syntax import DatasetSyntax
    from internvl_kit.train import split_views
    assert split_views.register(["hf::AI-ModelScope/LaTeX_OCR@test:small#5", "AI-ModelScope/LaTeX_OCR@train"]) == [
        "AI-ModelScope/LaTeX_OCR@test", "AI-ModelScope/LaTeX_OCR@train"]
    view = DATASET_MAPPING["AI-ModelScope/LaTeX_OCR@test"]
    assert view.split == ["test"] and all(s.split == ["test"] for s in view.subsets)
    assert (view.ms_dataset_id, view.hf_dataset_id) == ("AI-ModelScope/LaTeX_OCR", "linxy/LaTeX_OCR")
    plain = DatasetSyntax.parse("AI-ModelScope/LaTeX_OCR:small").get_dataset_meta(False)
    assert plain.split == ["train", "validation", "test"] and plain.dataset_name is None
    with pytest.raises(ValueError, match="has no split 'testing' in swift's registration; its splits: train, "
                                         "validation, test"):
        split_views.register(["AI-ModelScope/LaTeX_OCR@testing"])
    assert split_views.from_argv(["swift", "sft", "--dataset", "a/b@test", "c/d", "--val_dataset", "a/b@validation",
                                  "--lr", "x@y"]) == ["a/b@test", "a/b@validation"]


def test_loaded_rows_go_through_data_tools_checks_with_images_as_bytes(tiny_model, tmp_path):
    import io
    from internvl_kit.train import data_plan
    rows = data_plan._Rows({"model": str(tiny_model), "template": "internvl_hf", "max_length": 4096}, {})
    buf = io.BytesIO()
    Image.new("RGB", (900, 300)).save(buf, format="PNG")
    good = {"messages": [{"role": "user", "content": "Read it."}, {"role": "assistant", "content": "x"}],
            "images": [{"bytes": buf.getvalue(), "path": "a.png"}]}
    key = rows.see(good, "hub row", report=True)
    small = io.BytesIO()
    Image.new("RGB", (30, 30)).save(small, format="PNG")
    one_tile = rows.see({**good, "images": [{"bytes": small.getvalue(), "path": "s.png"}]}, "hub row", report=True)
    assert rows.errors == 0 and rows.findings == []
    assert rows.totals[key] > rows.totals[one_tile]                 # tiles taken from the size in the bytes
    bad = {**good, "images": [{"bytes": b"not an image", "path": "b.png"}]}
    rows.see(bad, "hub row", report=True)
    (finding,) = rows.findings
    assert rows.errors == 1 and finding.severity == "error" and "image-bad" in finding.message
