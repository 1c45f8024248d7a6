"""File-level truth, with swift as the oracle: a line that makes swift's loader fail the whole file is reported
as a file-level error (which line, and that none of the file's rows would train); lines swift's loader reads
as rows (several objects on a line, NaN in a key) are rows for validate too."""
from __future__ import annotations

import json

import pytest

from data_tools.validate import Options, Report, Validator

GOOD = json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok"}]})
# name -> the middle line of a three-line file (the other two are GOOD)
LINES = {
    "trailing text": (GOOD + " trailing").encode(),
    "comment line": b"// a comment",
    "BOM in mid-file": ("\ufeff" + GOOD).encode(),
    "bare string": b'"just a string"',
    "array line": ("[" + GOOD + "]").encode(),
    "invalid UTF-8": b'{"messages": "\xff\xfe"}',
    "two objects on a line": (GOOD + " " + GOOD).encode(),
    "NaN in an extra key": (GOOD[:-1] + ', "score": NaN}').encode(),
    "Infinity in an extra key": (GOOD[:-1] + ', "score": -Infinity}').encode(),
    "a nested key twice": GOOD.replace('"content": "hi"', '"content": "hi", "content": "ho"').encode(),
    "an extra key twice": (GOOD[:-1] + ', "s": 1, "s": 2}').encode(),
    "a number too big for a double": (GOOD[:-1] + ', "s": 1e400}').encode(),
    "a lone surrogate escape": GOOD.replace('"ok"', '"\\ud800"').encode(),
}


def _swift_rows(path) -> int | None:
    from swift.dataset import load_dataset
    try:
        ds, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    except Exception:  # noqa: BLE001 - whatever swift raises, the file does not load
        return None
    return len(ds)


@pytest.mark.parametrize("case", list(LINES))
def test_validate_says_what_swifts_loader_does_with_the_whole_file(case, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(GOOD.encode() + b"\n" + LINES[case] + b"\n" + GOOD.encode() + b"\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    file_level = [i for i in issues if i.code == "file"]
    rows = _swift_rows(path)
    if rows is None:
        assert len(file_level) == 1, [str(i) for i in issues]
        assert "line 2 is" in str(file_level[0]) and "fails on the whole file" in str(file_level[0])
        assert f"none of its {report.samples} row(s) would train" in str(file_level[0])
    else:
        assert file_level == [] and [str(i) for i in issues if i.severity == "error"] == []
        assert report.samples == rows, (report.samples, rows)


def _row(answer: str, **extra) -> str:
    return json.dumps({"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": answer}],
                       **extra})


_IMG_STR, _IMG_LIST = _row("a", images="x.png"), _row("b", images=["y.png"])
_TWO = _row("c") + " " + _row("d")
_TWICE = _row("t")[:-1] + ', "messages": []}'
_LOSS = json.dumps({"messages": [{"role": "user", "content": "hi", "loss": True}, {"role": "assistant", "content": "a"}]})
_PARTS = json.dumps({"messages": [{"role": "user", "content": [{"type": "text", "text": "q"}]},
                                  {"role": "assistant", "content": "b"}]})
# name -> (the file's lines, whether swift's loader fails it): the rules of datasets' JSON reader across lines
ACROSS = {
    "images a string and a list, and two objects on a line": ([_IMG_STR, _IMG_LIST, _TWO], True),
    "an extra key a number and a string, and two objects on a line": ([_TWO, _row("a", s=1), _row("b", s="x")], True),
    "content a string and a list, and two objects on a line": ([_row("a"), _PARTS, _TWO], True),
    "images a string and a list, and a blank line": ([_IMG_STR, "", _IMG_LIST], True),
    "images a string and a list, and a BOM": (["\ufeff" + _IMG_STR, _IMG_LIST], True),
    "images a string and a list, one object a line": ([_IMG_STR, _IMG_LIST], False),
    "messages with other keys, and two objects on a line": ([_LOSS, _TWO], False),
    "an int and a float, and two objects on a line": ([_row("a", s=1), _row("b", s=2.5), _TWO], False),
    "a key twice": ([_row("a"), _TWICE], True),
    "a key twice, and messages with other keys": ([_LOSS, _TWICE], False),
    "a key twice, messages with other keys and a blank line": ([_LOSS, "", _TWICE], True),
    "a key twice before a scalar mix": ([_TWICE, _row("a", s=1), _row("b", s="x")], True),
    "a key twice after a scalar mix": ([_row("a", s=1), _row("b", s="x"), _TWICE], False),
    "images mixing strings and objects in a row": (
        [_row("a"), _row("b", images=["x.png", {"path": "y.png"}])], True),
    "images strings and objects in different rows": ([_row("a", images=["x.png"]), _row("b", images=[{"path": "y"}])],
                                                     False),
}


@pytest.mark.parametrize("case", list(ACROSS))
def test_files_fail_where_datasets_json_reader_fails_them(case, tmp_path):
    """datasets reads a column of mixed types (a string and an array, a number and a string) by re-encoding
    it as JSON text with ujson, which needs every line to parse alone: several objects on a line, a blank
    line or a BOM do not, and then Arrow's refusal stands for the whole file. Objects of differing shapes
    make it re-encode the batch first, which also drops a key given twice (else Arrow refuses that). validate
    says what swift's loader does."""
    lines, fails = ACROSS[case]
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join(lines) + "\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    file_level = [str(i) for i in issues if i.code == "file"]
    rows = _swift_rows(path)
    assert (rows is None) == fails, rows
    if fails:
        assert len(file_level) == 1 and "fails on the whole file" in file_level[0], [str(i) for i in issues]
    else:
        assert file_level == [], [str(i) for i in issues]


def test_rows_in_another_format_than_the_files_are_errors_as_swift_drops_them(tmp_path):
    """swift picks one preprocessor per file from the union of its rows' keys: with a messages row in the
    file, a query/response row has no messages and is dropped silently."""
    path = tmp_path / "mixed.jsonl"
    path.write_text(GOOD + "\n" + json.dumps({"query": "q", "response": "r"}) + "\n" + GOOD.replace("ok", "fine") + "\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    assert [(i.line, i.code) for i in issues if i.severity == "error"] == [(2, "mixed-formats")]
    assert _swift_rows(path) == 2 == report.samples - report.errors


def test_a_messages_row_with_a_singular_image_key_has_that_image(tmp_path):
    """swift renames `image` to `images` for every row format, messages rows included."""
    from PIL import Image
    Image.new("RGB", (64, 48)).save(tmp_path / "a.png")
    path = tmp_path / "one.jsonl"
    path.write_text(json.dumps({"messages": [{"role": "user", "content": "<image>What?"},
                                             {"role": "assistant", "content": "a"}], "image": str(tmp_path / "a.png")})
                    + "\n" + GOOD + "\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    assert [str(i) for i in issues if i.severity == "error"] == [] and _swift_rows(path) == 2


def test_conversations_rows_beside_messages_rows_are_dropped_as_swift_does(tmp_path):
    conv = json.dumps({"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "r"}]})
    path = tmp_path / "mixed.jsonl"
    path.write_text(GOOD + "\n" + conv + "\n" + GOOD.replace("ok", "fine") + "\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    assert [(i.line, i.code) for i in issues if i.severity == "error"] == [(2, "mixed-formats")]
    assert _swift_rows(path) == 2


def test_a_singular_image_key_beside_rows_with_images_is_lost_as_in_swift(tmp_path):
    """swift renames `image` to `images` only where the file has no `images` column: otherwise it drops it."""
    from PIL import Image
    for name in ("a", "b"):
        Image.new("RGB", (64, 48)).save(tmp_path / f"{name}.png")
    msgs = [{"role": "user", "content": "<image>hi"}, {"role": "assistant", "content": "ok"}]
    path = tmp_path / "mixed.jsonl"
    path.write_text(json.dumps({"messages": msgs, "images": [str(tmp_path / "a.png")]}) + "\n"
                    + json.dumps({"messages": msgs, "image": str(tmp_path / "b.png")}) + "\n")
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    assert [(i.line, i.code) for i in issues if i.severity == "error"] == [(2, "mixed-formats")]
    from swift.dataset import load_dataset
    ds, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    assert [bool(r["images"]) for r in ds] == [True, False]


def test_the_per_row_report_marks_rows_swift_does_not_load(tmp_path):
    """validate --report: a row in another format than the file's is marked as not loaded, the file's other
    rows as loaded; every row of a file swift's loader fails is marked, with the file-level code."""
    from conftest import run_cli
    mixed, failed, out = tmp_path / "mixed.jsonl", tmp_path / "failed.jsonl", tmp_path / "rows.jsonl"
    mixed.write_text(GOOD + "\n" + json.dumps({"query": "q", "response": "r"}) + " " + GOOD + "\n")
    failed.write_text(GOOD + "\n" + _TWICE + "\n")
    run = run_cli("-m", "data_tools", "validate", str(mixed), str(failed), "--no-tokens", "--report", str(out))
    assert run.returncode == 1, run.stderr
    recs = [(r["file"].rsplit("/", 1)[1], r["line"], r["loaded"], r["errors"])
            for r in map(json.loads, out.read_text().splitlines())]
    assert recs == [("mixed.jsonl", 1, True, []), ("mixed.jsonl", 2, False, ["mixed-formats"]),
                    ("mixed.jsonl", 2, True, []), ("failed.jsonl", 1, False, ["file"]),
                    ("failed.jsonl", 2, False, ["file", "schema"])], recs


def test_a_file_pyarrow_crashes_on_is_a_file_level_error(tmp_path):
    """A row of mixed types before a line longer than pyarrow's JSON block (a long inline image), in a file
    datasets reads raw (a line of two objects stops its re-encoding): pyarrow segfaults, and swift's loader
    with it. validate reads that part of the file in a child process and says so, without crashing."""
    import subprocess
    import sys
    big = _row("b", images=["A" * 450_000])
    path = tmp_path / "data.jsonl"
    path.write_text("\n".join([_row("a", images="y.png"), big, _TWO]) + "\n")
    load = ("import sys; from swift.dataset import load_dataset; "
            "load_dataset([sys.argv[1]], num_proc=1, load_from_cache_file=False)")
    swift = subprocess.run([sys.executable, "-c", load, str(path)], capture_output=True)
    assert swift.returncode == -11, swift.stderr[-500:]                  # swift's loader dies of SIGSEGV
    report, issues = Report(), []
    Validator(Options()).validate_file(path, report, issues.append)
    file_level = [str(i) for i in issues if i.code == "file"]
    assert len(file_level) == 1 and "line 2 is a line of 450," in file_level[0] and "crashes" in file_level[0]


def test_stats_counts_only_the_rows_swift_loads(tmp_path):
    """stats: the rows of a file swift's loader fails on, and rows it drops for their format, are not usable."""
    from conftest import run_cli
    good, failed = tmp_path / "good.jsonl", tmp_path / "failed.jsonl"
    good.write_text(GOOD + "\n" + json.dumps({"query": "q", "response": "r"}) + "\n" + _row("x") + "\n")
    failed.write_text(GOOD + "\n" + _TWICE + "\n" + _row("y") + "\n")
    run = run_cli("-m", "data_tools", "stats", str(good), str(failed), "--json")
    assert run.returncode == 0, run.stderr
    stats = json.loads(run.stdout)
    assert stats["samples"] == 6 and stats["usable"] == 2, stats
