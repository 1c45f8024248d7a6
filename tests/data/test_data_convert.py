"""data_tools convert: every input format to messages JSONL that passes validate; atomic; input untouched."""
from __future__ import annotations

import argparse
import hashlib
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from conftest import run_cli
from data_tools import convert
from data_tools.validate import Options, Report, Validator


@pytest.fixture
def imgs(tmp_path) -> Path:
    d = tmp_path / "images"
    d.mkdir()
    for i, color in enumerate(["red", "green", "blue"]):
        Image.new("RGB", (64 + 32 * i, 64), color).save(d / f"{i}.png")
    return d


def converted(out: Path) -> list[dict]:
    rows = [json.loads(x) for x in out.read_text().splitlines()]
    report = Report()
    Validator(Options()).validate_file(out, report, lambda issue: None)
    assert report.errors == 0 and report.warnings == 0, report.counts
    return rows


def convert_cli(*args: str, cwd: Path | None = None):
    out = run_cli("-m", "data_tools", "convert", *args, **({"cwd": cwd} if cwd else {}))
    assert "Traceback" not in out.stderr, out.stderr
    return out


def test_llava_json_with_string_and_list_images_and_skips(tmp_path, imgs):
    src = tmp_path / "llava.json"
    src.write_text(json.dumps([
        {"id": 1, "image": "images/0.png",
         "conversations": [{"from": "human", "value": "<image>\nWhat colour?"}, {"from": "gpt", "value": "red"}]},
        {"id": 2, "image": ["images/1.png", "images/2.png"],
         "conversations": [{"from": "human", "value": "Compare them."}, {"from": "gpt", "value": "green, blue"}]},
        {"id": 3, "conversations": [{"from": "human", "value": "text only"}, {"from": "gpt", "value": "ok"}]},
        {"id": 4, "image": "images/missing.png",
         "conversations": [{"from": "human", "value": "<image>?"}, {"from": "gpt", "value": "x"}]},
        {"id": 5, "conversations": [{"from": "robot", "value": "?"}]},
    ]))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    out = tmp_path / "out.jsonl"
    res = convert_cli("--from", "llava", str(src), "-o", str(out))
    assert res.returncode == 0
    assert "converted 3 row(s)" in res.stdout and "skipped 2" in res.stdout
    assert "llava.json, row 4: image 'images/missing.png' not found" in res.stdout   # the whole file is one line
    assert "unknown speaker 'robot'" in res.stdout
    rows = converted(out)
    assert rows[0]["images"] == [str(imgs / "0.png")]                     # absolute, resolved
    assert rows[1]["messages"][0]["content"] == "<image>\n<image>\nCompare them."   # tags placed
    assert "images" not in rows[2]
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest          # input untouched


def test_sharegpt_jsonl_relative_output(tmp_path, imgs):
    src = tmp_path / "s.jsonl"
    src.write_text(json.dumps({"images": ["images/0.png"], "conversations": [
        {"from": "system", "value": "Be brief."}, {"from": "user", "value": "<image>hi"},
        {"from": "assistant", "value": "red"}]}) + "\n")
    out = tmp_path / "o.jsonl"
    assert convert_cli("--from", "sharegpt", str(src), "-o", str(out), "--relative-to", str(tmp_path)).returncode == 0
    (row,) = [json.loads(x) for x in out.read_text().splitlines()]
    assert row["images"] == ["images/0.png"] and row["messages"][0]["role"] == "system"


def test_internvl_meta_with_root(tmp_path, imgs):
    ann = tmp_path / "ann" / "a.jsonl"
    ann.parent.mkdir()
    ann.write_text(json.dumps({"id": 0, "image": "1.png", "conversations": [
        {"from": "human", "value": "<image>\ncolour?"}, {"from": "gpt", "value": "green"}]}) + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"shapes": {"root": "images", "annotation": "ann/a.jsonl", "repeat_time": 1}}))
    out = tmp_path / "o.jsonl"
    # InternVL's convention: relative root and annotation are under the directory it is launched from
    assert convert_cli("--from", "internvl", str(meta), "-o", str(out), cwd=tmp_path).returncode == 0
    (row,) = converted(out)
    assert row["images"] == [str(imgs / "1.png")]
    # from elsewhere: not found, with the fix; no output written
    elsewhere = convert_cli("--from", "internvl", str(meta), "-o", str(tmp_path / "x.jsonl"))
    assert elsewhere.returncode == 1 and "--meta-relative" in elsewhere.stdout
    assert not (tmp_path / "x.jsonl").exists()
    out3 = tmp_path / "o3.jsonl"
    assert convert_cli("--from", "internvl", str(meta), "-o", str(out3), "--meta-relative").returncode == 0
    assert converted(out3) == [row]
    # the annotation JSONL alone, with its image root given
    out2 = tmp_path / "o2.jsonl"
    assert convert_cli("--from", "internvl", str(ann), "-o", str(out2), "--image-root", str(imgs)).returncode == 0
    assert converted(out2) == [row]


def test_alpaca(tmp_path, imgs):
    src = tmp_path / "a.json"
    src.write_text(json.dumps([
        {"instruction": "Translate", "input": "bonjour", "output": "hello"},
        {"instruction": "Describe", "output": "red", "image": str(imgs / "0.png"), "system": "S"},
        {"instruction": "no output"},
    ]))
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "alpaca", str(src), "-o", str(out))
    assert res.returncode == 0 and "skipped 1" in res.stdout
    rows = converted(out)
    assert rows[0]["messages"][0]["content"] == "Translate\nbonjour"
    assert rows[1]["messages"][1]["content"] == "<image>\nDescribe"


@pytest.mark.parametrize("fmt,sep", [("csv", ","), ("tsv", "\t")])
def test_csv_tsv_latex_ocr(tmp_path, imgs, fmt, sep):
    src = tmp_path / f"d.{fmt}"
    src.write_text(f"image{sep}text\nimages/0.png{sep}x^{{2}}\nimages/1.png{sep}\\frac{{a}}{{b}}\nimages/9.png{sep}y\n")
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", fmt, str(src), "-o", str(out), "--prompt", "OCR this.")
    assert res.returncode == 0 and "converted 2" in res.stdout and "skipped 1" in res.stdout
    rows = converted(out)
    assert rows[1]["messages"] == [{"role": "user", "content": "<image>OCR this."},
                                   {"role": "assistant", "content": "\\frac{a}{b}"}]
    bad = convert_cli("--from", fmt, str(src), "-o", str(out), "--text-column", "latex", "--prompt", "x")
    assert bad.returncode == 2 and "no column(s) latex" in bad.stderr


def _png_bytes(color: str) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (80, 40), color).save(buf, format="PNG")
    return buf.getvalue()


def test_hf_parquet_images_written_by_content_hash(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq
    d = tmp_path / "LaTeX_OCR" / "human_handwrite"
    d.mkdir(parents=True)
    table = pa.table({"image": [{"bytes": _png_bytes("red"), "path": None}, {"bytes": _png_bytes("red"), "path": None},
                                {"bytes": _png_bytes("blue"), "path": None}],
                      "text": ["a+b", "c", "d"]})
    pq.write_table(table, d / "train-00000.parquet")
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "hf", str(tmp_path / "LaTeX_OCR"), "-o", str(out), "--prompt", "OCR:")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = converted(out)
    assert len(rows) == 3 and rows[0]["images"] == rows[1]["images"] != rows[2]["images"]  # same bytes, one file
    written = sorted((tmp_path / "o_images").iterdir())
    assert len(written) == 2
    assert written[0].name == hashlib.sha256(written[0].read_bytes()).hexdigest()[:32] + ".png"


def test_hf_save_to_disk_directory(tmp_path):
    import datasets
    ds = datasets.Dataset.from_dict({"image": [Image.new("RGB", (40, 40), "red")], "text": ["x"]},
                                    features=datasets.Features({"image": datasets.Image(),
                                                                "text": datasets.Value("string")}))
    ds.save_to_disk(str(tmp_path / "ds"))
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "hf", str(tmp_path / "ds"), "-o", str(out), "--prompt", "OCR:")
    assert res.returncode == 0, res.stdout + res.stderr
    assert converted(out)[0]["messages"][1]["content"] == "x"


def test_interrupted_conversion_leaves_no_partial_output(tmp_path, imgs, monkeypatch):
    src = tmp_path / "l.jsonl"
    row = {"image": "images/0.png", "conversations": [{"from": "human", "value": "<image>?"},
                                                       {"from": "gpt", "value": "red"}]}
    src.write_text("\n".join(json.dumps(row) for _ in range(50)) + "\n")
    out = tmp_path / "out" / "o.jsonl"
    calls = {"n": 0}
    real = convert.from_conversations

    def flaky(*a):
        calls["n"] += 1
        if calls["n"] == 20:
            raise KeyboardInterrupt
        return real(*a)

    monkeypatch.setattr(convert, "from_conversations", flaky)
    args = argparse.Namespace(input=src, fmt="llava", output=out, image_root=None, relative_to=None,
                              image_column="image", text_column="text", prompt="", images_dir=None,
                              question_column=None, meta_relative=False)
    with pytest.raises(KeyboardInterrupt):
        convert.run(args)
    assert calls["n"] == 20
    assert not out.exists() and list(out.parent.iterdir()) == []     # no partial file, no temp file


def test_output_never_overwrites_input(tmp_path):
    src = tmp_path / "x.jsonl"
    src.write_text("{}\n")
    res = convert_cli("--from", "llava", str(src), "-o", str(src))
    assert res.returncode == 2 and src.read_text() == "{}\n"


def test_convert_keeps_everything_or_says_what_it_dropped(tmp_path, imgs):
    src = tmp_path / "s.jsonl"
    rows = [{"id": 1, "system": "Be brief.", "image": "images/0.png", "source": "web",
             "conversations": [{"from": "human", "value": "<image>colour?"}, {"from": "gpt", "value": "red"}]},
            {"id": 2, "video": "images/1.png",
             "conversations": [{"from": "human", "value": "<video>what?"}, {"from": "gpt", "value": "a clip"}]}]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "sharegpt", str(src), "-o", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    first, second = [json.loads(x) for x in out.read_text().splitlines()]
    assert first["messages"][0] == {"role": "system", "content": "Be brief."}            # ShareGPT's system
    assert second["videos"] == [str(imgs / "1.png")] and "<video>" in second["messages"][0]["content"]
    assert f"dropped field 'id' from 2 row(s) (not part of swift's format), e.g. {src}:1" in res.stdout
    assert "dropped field 'source' from 1 row(s)" in res.stdout

    alpaca = tmp_path / "a.jsonl"
    alpaca.write_text(json.dumps({"instruction": "and now?", "input": "", "output": "c",
                                  "history": [["a?", "b"]]}) + "\n")
    assert convert_cli("--from", "alpaca", str(alpaca), "-o", str(out)).returncode == 0
    assert [m["content"] for m in converted(out)[0]["messages"]] == ["a?", "b", "and now?", "c"]


def test_table_columns_question_and_prompt(tmp_path, imgs):
    src = tmp_path / "d.csv"
    src.write_text("file,question,latex,note\nimages/0.png,What is it?,x^{2},n1\nimages/1.png,Read it.,y,\n")
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "csv", str(src), "-o", str(out), "--image-column", "file", "--question-column",
                      "question", "--answer-column", "latex")
    assert res.returncode == 0, res.stdout + res.stderr
    rows = converted(out)
    assert [r["messages"][0]["content"] for r in rows] == ["<image>What is it?", "<image>Read it."]
    assert "dropped field 'note' from 1 row(s)" in res.stdout
    unnamed = convert_cli("--from", "csv", str(src), "-o", str(out), "--image-column", "file")
    assert unnamed.returncode == 2 and "--question-column COL" in unnamed.stderr


def test_internvl_repeat_time_and_relative_image_root(tmp_path, imgs):
    ann = tmp_path / "a.jsonl"
    ann.write_text(json.dumps({"image": "0.png", "conversations": [
        {"from": "human", "value": "<image>?"}, {"from": "gpt", "value": "red"}]}) + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"x": {"root": str(imgs), "annotation": str(ann), "repeat_time": 2.5,
                                      "max_dynamic_patch": 6}}))
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "internvl", str(meta), "-o", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    assert len(out.read_text().splitlines()) == 2
    assert "repeat_time 2.5 written as 2x" in res.stdout and "max_dynamic_patch 6 not carried" in res.stdout
    # a relative --image-root still writes absolute paths
    out2 = tmp_path / "o2.jsonl"
    res = convert_cli("--from", "internvl", str(ann), "-o", str(out2), "--image-root", "images", cwd=tmp_path)
    assert res.returncode == 0 and json.loads(out2.read_text())["images"] == [str(imgs / "0.png")]


def test_convert_carries_or_reports_every_field_at_every_level(tmp_path, imgs):
    """Turn-level keys swift keeps (loss, loss_scale) are carried, others reported; `image` and `images` are
    both kept (`images` first); a list answer becomes its first item, as swift's preprocessors take it, and
    that is reported too."""
    src = tmp_path / "llava.jsonl"
    src.write_text(json.dumps({"image": "images/0.png", "images": ["images/1.png"], "conversations": [
        {"from": "human", "value": "<image>\n<image>\nSame?"},
        {"from": "gpt", "value": "no", "loss": False, "weight": 0.5},
        {"from": "human", "value": "Sure?"},
        {"from": "gpt", "value": ["yes", "quite"]}]}) + "\n")
    out = tmp_path / "out.jsonl"
    res = convert_cli("--from", "llava", str(src), "-o", str(out))
    assert res.returncode == 0, res.stdout + res.stderr
    (row,) = converted(out)
    assert [Path(p).name for p in row["images"]] == ["1.png", "0.png"]
    assert row["messages"][1] == {"role": "assistant", "content": "no", "loss": False}
    assert row["messages"][3]["content"] == "yes"
    assert "dropped field 'conversations[].weight' from 1 row(s)" in res.stdout
    assert "conversations[].value beyond a list's first item" in res.stdout


def test_preference_pairs_and_mmpr_become_swifts_rejected_response_rows(tmp_path, imgs):
    """question/chosen/rejected rows (RLAIF-V's and MMPR's form) -> messages + rejected_response, which validate
    passes and swift's loader and rlhf template read as a pair; a pair of equal answers is skipped with why."""
    src = tmp_path / "pairs.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in [
        {"image": "0.png", "question": "What colour?", "chosen": "red", "rejected": "I cannot tell.", "origin": "x"},
        {"images": ["1.png"], "prompt": "<image>\nColour?", "chosen": "green", "rejected": "blue"},
        {"image": "2.png", "question": "Colour?", "chosen": "blue", "rejected": "blue"}]))
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "pairs", str(src), "-o", str(out), "--image-root", str(imgs))
    assert res.returncode == 0 and "converted 2 row(s)" in res.stdout, res.stdout
    assert "chosen and rejected are the same answer" in res.stdout and "dropped field 'origin'" in res.stdout
    first, second = converted(out)
    assert first == {"messages": [{"role": "user", "content": "<image>\nWhat colour?"},
                                  {"role": "assistant", "content": "red"}],
                     "images": [str(imgs / "0.png")], "rejected_response": "I cannot tell."}
    assert second["messages"][0]["content"] == "<image>\nColour?" and second["rejected_response"] == "blue"
    # MMPR: InternVL's meta JSON (root + annotation) over such rows
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "m.jsonl").write_text(src.read_text().splitlines()[0] + "\n")
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps({"mmpr_part": {"root": str(imgs), "annotation": "ann/m.jsonl", "repeat_time": 1}}))
    out2 = tmp_path / "o2.jsonl"
    assert convert_cli("--from", "mmpr", str(meta), "-o", str(out2), "--meta-relative").returncode == 0
    assert converted(out2) == [first]
    from swift.dataset import load_dataset
    (row,) = load_dataset([str(out2)], num_proc=1, load_from_cache_file=False)[0]
    assert row["rejected_response"] == "I cannot tell." and row["messages"][-1]["content"] == "red"


def test_rlaif_v_parquet_becomes_preference_rows(tmp_path):
    """RLAIF-V as the hub ships it (parquet: image bytes, question, chosen, rejected, origin columns)."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    table = pa.table({"image": [{"bytes": _png_bytes("red"), "path": None}, {"bytes": _png_bytes("blue"), "path": None}],
                      "question": ["What colour is it?", "And this?"], "chosen": ["red", "blue"],
                      "rejected": ["I cannot tell.", "blue"], "origin_dataset": ["x", "y"]})
    pq.write_table(table, tmp_path / "train-00000.parquet")
    out = tmp_path / "o.jsonl"
    res = convert_cli("--from", "hf", str(tmp_path / "train-00000.parquet"), "-o", str(out), "--question-column",
                      "question", "--text-column", "chosen", "--rejected-column", "rejected")
    assert res.returncode == 0 and "converted 1 row(s)" in res.stdout, res.stdout + res.stderr
    assert "chosen and rejected are the same answer" in res.stdout
    (row,) = converted(out)
    assert row["messages"][-1]["content"] == "red" and row["rejected_response"] == "I cannot tell."
