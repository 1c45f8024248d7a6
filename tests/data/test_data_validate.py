"""data_tools validate: every error and warning code on the line that causes it, exit codes, --json."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, run_cli


def _row(content: str = "<image>What is it?", answer: str = "a cat", images=None, **extra) -> str:
    row = {"messages": [{"role": "user", "content": content}, {"role": "assistant", "content": answer}]}
    if images is not None:
        row["images"] = images
    row.update(extra)
    return json.dumps(row)


@pytest.fixture
def fixture_dir(tmp_path) -> Path:
    d = tmp_path / "data"
    (d / "img").mkdir(parents=True)
    Image.new("RGB", (448, 448), "red").save(d / "img" / "ok.png")   # 1 tile: 256 tokens
    Image.new("RGB", (200, 200), "blue").save(d / "img" / "ok.jpg", quality=90)
    (d / "img" / "not-an-image.png").write_bytes(b"hello, I am text")
    good = (d / "img" / "ok.png").read_bytes()
    (d / "img" / "truncated.png").write_bytes(good[: len(good) // 2])
    return d


def test_every_code_is_reported_on_its_line(fixture_dir, tmp_path, monkeypatch):
    d = fixture_dir
    ok = str(d / "img" / "ok.png")
    lines = {
        1: _row(images=[ok]),                                                     # good
        2: "{not json",                                                           # json
        3: json.dumps({"messages": [{"role": "user", "content": 3}]}),            # schema
        4: json.dumps({"messages": [{"role": "assistant", "content": "x"}, {"role": "user", "content": "y"}]}),
        5: _row(answer="   ", images=[ok]),                                       # empty
        6: _row(content="<image><image>two?", images=[ok]),                       # extra-tags
        7: _row(images=[str(d / "img" / "missing.png")]),                         # image-missing
        8: _row(images=[str(d / "img" / "not-an-image.png")]),                    # image-bad
        9: _row(content="<image>" + "x " * 800, images=[ok]),                     # too-long
        10: _row(content="no tag here", images=[ok]),                             # missing-tags
        11: _row(images=["img/ok.jpg"]),                                          # relative-path
        12: _row(images=[ok]),                                                    # duplicate of line 1
        13: "",                                                                   # blank
        14: _row(images=["https://example.com/a.png"]),                           # remote-media
    }
    path = d / "bad.jsonl"
    body = "\n".join(lines[i] for i in sorted(lines)).encode() + b"\n" + b'{"messages": "\xff\xfe"}\n'  # 15: utf8
    path.write_bytes(body)
    before = path.read_bytes()
    monkeypatch.chdir(tmp_path)          # relative image paths resolve against cwd, as in swift
    out = run_cli("-m", "data_tools", "validate", str(path), "--max-length", "600", cwd=tmp_path)
    assert out.returncode == 1 and "Traceback" not in out.stderr + out.stdout
    got = {}
    for line in out.stdout.splitlines():
        if line.startswith(str(path) + ":"):
            _, ln, rest = line.split(":", 2)
            sev, code = rest.split(":")[0].split()
            got.setdefault(int(ln), set()).add((sev, code))
    expected = {2: {("error", "json")}, 3: {("error", "schema")}, 4: {("error", "roles")},
                5: {("warning", "empty")}, 6: {("error", "extra-tags")}, 7: {("error", "image-missing")},
                8: {("error", "image-bad")}, 9: {("error", "too-long")}, 10: {("warning", "missing-tags")},
                11: {("error", "relative-path")}, 12: {("warning", "duplicate")}, 13: {("warning", "blank")},
                14: {("warning", "remote-media")}, 15: {("error", "utf8")},
                0: {("error", "file")}}          # line 2 is not JSON: swift's loader fails on the whole file
    assert got == expected
    assert path.read_bytes() == before                        # input untouched
    assert "summary: 14 samples in 1 file(s): 10 error(s), 5 warning(s)" in out.stdout
    assert "line 2 is not JSON: swift's loader fails on the whole file, so none of its 14 row(s)" in out.stdout
    assert "fix: max_length=" in out.stdout and "swift would drop this sample silently" in out.stdout
    assert "swift resolves against the current directory" in out.stdout


def test_a_file_that_is_no_video_is_an_error_and_a_remote_one_is_not_read(fixture_dir, tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not decoded")
    f = tmp_path / "v.jsonl"
    rows = [{"messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "x"}],
             "videos": [v]} for v in (str(clip), "https://example.com/clip.mp4")]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_cli("-m", "data_tools", "validate", str(f), "--max-length", "100")
    assert out.returncode == 1
    (line,) = [x for x in out.stdout.splitlines() if x.startswith(f"{f}:1: error video-bad: video ")]
    assert "does not open as a video" in line            # (a long path is shortened in the message)
    assert f"{f}:2: warning remote-media: video 'https://example.com/clip.mp4' is a URL" in out.stdout


def test_missing_input_file_is_an_error_not_a_traceback(tmp_path):
    out = run_cli("-m", "data_tools", "validate", str(tmp_path / "nope.jsonl"))
    assert out.returncode == 1 and f"{tmp_path / 'nope.jsonl'}:0: error file: not found" in out.stdout


def test_good_file_passes_and_strict_turns_warnings_into_failure(fixture_dir, tmp_path):
    ok = str(fixture_dir / "img" / "ok.png")
    good = tmp_path / "good.jsonl"
    good.write_text(_row(images=[ok]) + "\n" + _row(content="two <image> and <image>", images=[ok, ok]) + "\n")
    assert run_cli("-m", "data_tools", "validate", str(good)).returncode == 0
    warn = tmp_path / "warn.jsonl"
    warn.write_text(_row(content="no tag", images=[ok]) + "\n")
    assert run_cli("-m", "data_tools", "validate", str(warn)).returncode == 0
    assert run_cli("-m", "data_tools", "validate", str(warn), "--strict").returncode == 1


def test_bad_usage_exits_2(tmp_path):
    assert run_cli("-m", "data_tools", "validate").returncode == 2
    assert run_cli("-m", "data_tools", "validate", "x.jsonl", "--template", "nope").returncode == 2
    assert run_cli("-m", "data_tools", "frobnicate").returncode == 2


def test_deep_decodes_and_catches_truncated_images(fixture_dir, tmp_path):
    f = tmp_path / "t.jsonl"
    f.write_text(_row(images=[str(fixture_dir / "img" / "truncated.png")]) + "\n")
    assert run_cli("-m", "data_tools", "validate", str(f)).returncode == 0      # header is intact
    out = run_cli("-m", "data_tools", "validate", str(f), "--deep")
    assert out.returncode == 1 and "error image-bad" in out.stdout


def test_json_report(fixture_dir, tmp_path):
    f = tmp_path / "j.jsonl"
    f.write_text(_row(images=[str(fixture_dir / "img" / "ok.png")]) + "\n{bad\n")
    out = run_cli("-m", "data_tools", "validate", str(f), "--json", "--max-length", "5000")
    report = json.loads(out.stdout)
    assert out.returncode == 1 and report["errors"] == 2 and report["samples"] == 2
    assert report["issues"] == [{"path": str(f), "line": 2, "severity": "error", "code": "json",
                                 "message": report["issues"][0]["message"]},
                                {"path": str(f), "line": 0, "severity": "error", "code": "file",
                                 "message": "line 2 is not JSON: swift's loader fails on the whole file, so none "
                                            "of its 2 row(s) would train; fix or remove that line"}]
    assert report["max_tokens"] > 256 and "ESTIMATED" in report["tokens"]


def test_image_root_resolves_like_root_image_dir(fixture_dir, tmp_path):
    f = tmp_path / "r.jsonl"
    f.write_text(_row(images=["ok.png"]) + "\n")
    out = run_cli("-m", "data_tools", "validate", str(f), "--image-root", str(fixture_dir / "img"))
    assert out.returncode == 0, out.stdout


def test_recipe_supplies_limits_model_and_datasets(demo_model, demo_data):
    out = run_cli("-m", "data_tools", "validate", "--recipe", "recipes/tiny-demo.yaml")
    assert out.returncode == 0, out.stdout
    assert "56 samples in 2 file(s)" in out.stdout and "exact (tokenizer of" in out.stdout
    out = run_cli("-m", "data_tools", "validate", "--recipe", "recipes/tiny-demo.yaml", "--max-length", "50")
    assert out.returncode == 1 and "internvl.max_num=" in out.stdout


def test_train_refuses_bad_data_unless_told(fixture_dir, tmp_path, demo_model):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(_row(images=[str(fixture_dir / "img" / "missing.png")]) + "\n")
    args = ["train.py", "recipes/tiny-demo.yaml", "--dry-run", f"dataset=[{bad}]", "~val_dataset",
            f"output_dir={tmp_path}/out"]
    out = run_cli(*args)
    assert out.returncode == 1 and f"{bad}:1: error: image-missing" in out.stderr
    out = run_cli(*args, "--skip-preflight")
    assert out.returncode == 0 and "launching despite preflight errors" in out.stderr


def test_data_tools_stands_alone(tmp_path):
    """data_tools imports nothing from internvl_kit (the preflight calls data_tools, never the reverse) and
    validates without torch or swift: each is made unimportable in a fresh interpreter."""
    import ast
    for f in (ROOT / "data_tools").glob("*.py"):
        for node in ast.walk(ast.parse(f.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            assert not any(n.split(".")[0] == "internvl_kit" for n in names), f"{f.name} imports internvl_kit"
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "hi"},
                                             {"role": "assistant", "content": "ok"}]}) + "\n")
    code = ("import sys\nfor m in ('internvl_kit', 'torch', 'swift', 'transformers'): sys.modules[m] = None\n"
            "from data_tools.cli import main\n"
            f"sys.exit(main(['validate', {str(data)!r}, '--no-tokens']))")
    out = run_cli("-c", code)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 samples" in out.stdout or "1 sample" in out.stdout, out.stdout


def test_file_level_problems_are_one_line_each(tmp_path):
    import gzip
    loop = tmp_path / "loop.jsonl"
    os.symlink(loop, loop)
    fifo = tmp_path / "fifo.jsonl"
    os.mkfifo(fifo)
    gz = tmp_path / "gz.jsonl"
    gz.write_bytes(gzip.compress(b'{"messages": []}\n'))
    (tmp_path / "dir.jsonl").mkdir()
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    cases = {loop: "symlink loop", fifo: "not a regular file", gz: "gzip-compressed", tmp_path / "dir.jsonl":
             "a directory", empty: "no samples"}
    out = run_cli("-m", "data_tools", "validate", *map(str, cases), "--no-tokens", timeout=60)
    assert out.returncode == 1 and "Traceback" not in out.stdout + out.stderr
    for path, words in cases.items():
        assert f"{path}:0: error file: " in out.stdout and words in out.stdout, (path, out.stdout)


def test_tilde_paths_expand_without_root_image_dir(tmp_path, monkeypatch):
    from data_tools.validate import Options, Report, Validator
    home = tmp_path / "home"
    home.mkdir()
    Image.new("RGB", (64, 48)).save(home / "a.png")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"messages": [{"role": "user", "content": "<image>hi"},
                                             {"role": "assistant", "content": "ok"}], "images": ["~/a.png"]}) + "\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ROOT_IMAGE_DIR", raising=False)
    issues = []
    Validator(Options()).validate_file(data, Report(), issues.append)
    assert not issues, issues


def test_grounding_rows_are_checked_and_drawn(tmp_path):
    """validate names each grounding fault; stats --draw puts the boxes at the file's own pixels."""
    from data_tools.cli import main
    img = tmp_path / "a.png"
    Image.new("RGB", (200, 100), "white").save(img)
    ask = [{"role": "user", "content": "<image>Where is <ref-object>?"}, {"role": "assistant", "content": "<bbox>"}]
    rows = [{"messages": ask, "images": [str(img)], "objects": {"ref": ["cat"], "bbox": [[10, 20, 110, 80]]}},
            {"messages": ask, "images": [str(img)], "objects": {"ref": ["cat"], "bbox": [[110, 20, 10, 80]]}},
            {"messages": ask, "images": [str(img)], "objects": {"ref": ["cat"], "bbox": [[10, 20, 250, 80]]}},
            {"messages": ask, "images": [str(img)], "objects": {"ref": ["cat"], "bbox": [[0.1, 0.2, 0.5, 0.8]]}},
            {"messages": ask, "images": [str(img)], "objects": {"ref": ["cat"], "bbox": [[1, 2, 3, 4]], "image_id": [2]}},
            {"messages": ask, "images": [str(img)], "objects": {"ref": ["cat", "dog"], "bbox": [[1, 2, 3, 4]] * 2}},
            {"messages": ask, "images": [str(img)]}]
    data = tmp_path / "g.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_cli("-m", "data_tools", "validate", str(data), "--no-tokens")
    assert out.returncode == 1
    expected = {2: "swift swaps them silently", 3: "outside its 200x100 image", 4: "look normalised",
                5: "image_id 2 but the row has 1 image(s); swift fails on the row",
                6: "1 <ref-object> tag(s) but 2 objects.ref: swift ignores the last 1 ref entry",
                7: "but no `objects`: swift keeps the tags as literal text"}
    for line, text in expected.items():
        assert any(x.startswith(f"{data}:{line}: error grounding: ") and text in x for x in out.stdout.splitlines()), \
            (line, out.stdout)
    assert f"{data}:1:" not in out.stdout
    assert main(["stats", str(data), "--draw", "5", "--draw-dir", str(tmp_path / "d")]) == 0
    (drawn,) = (tmp_path / "d").iterdir()                       # only line 1 is a clean grounding row
    im = Image.open(drawn).convert("RGB")
    scale = 320 / 100
    from data_tools.grounding import REFERENCE
    assert im.size == (640, 320) and im.getpixel((round(10 * scale) + 1, round(50 * scale))) == REFERENCE
