"""swift is the oracle on rows nobody listed: a fixed seed's generated corpus (row_grammar.py: every row
format and media spelling, JSON-level oddities, broken and odd images, files mixing forms and types) goes
through swift's loader and each template's `encode` and through validate, for internvl_hf, internvl2_5 and
internvl3_5. File by file and row by row, the verdicts and token counts agree, apart from the deliberate
differences the README lists (tests/data/parity.py). Sharded so that xdist spreads it over the workers;
benchmarks/parity_classes.py runs the same comparison on thousands of files.
"""
from __future__ import annotations

import collections
import contextlib
import io

import pytest

import parity
from row_grammar import Grammar

SEED, FILES, SHARDS = 20261203, 510, 6


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    root = tmp_path_factory.mktemp("generated")
    grammar = Grammar(root, SEED)
    return root, [grammar.file(i) for i in range(FILES)]


@pytest.fixture(scope="module")
def oracles():
    return parity.oracles()


@pytest.mark.parametrize("shard", range(SHARDS))
def test_generated_files_agree_with_swift_on_every_template(shard, generated, oracles, monkeypatch):
    root, files = generated
    monkeypatch.chdir(root)                        # cwd-relative images resolve here, for both sides
    monkeypatch.delenv("ROOT_IMAGE_DIR", raising=False)
    found, tally = [], collections.Counter()
    for path, markers in files[shard::SHARDS]:
        loaded = parity.swift_load(path)
        for oracle in oracles:
            classes, agreed = parity.compare(path, markers, loaded, oracle)
            found += [f"{oracle.name} {path.name}: {c}" for c in classes]
            tally += agreed
    assert found == [], f"{len(found)} disagreement(s):\n" + "\n".join(found[:40])
    # The corpus means something in every shard: rows trained with equal counts, rows and files both refuse,
    # and the deliberate differences, on all three templates (85 files, 3 templates).
    assert tally["row trained, equal tokens"] >= 200 and tally["row refused by both"] >= 60, tally
    assert tally["file fails for both"] >= 6 and tally["deliberate difference"] >= 15, tally


def test_no_generated_input_gives_a_traceback(generated, monkeypatch, tmp_path):
    """validate (with and without --deep) and convert (from every JSON-lines format it reads) on every
    generated file end in a verdict and an exit status, never a traceback."""
    from data_tools.cli import main
    root, files = generated
    monkeypatch.chdir(root)
    for path, _ in files:
        for argv in (["validate", str(path), "--no-tokens"], ["validate", str(path), "--no-tokens", "--deep"],
                     *(["convert", str(path), "--from", fmt, "-o", str(tmp_path / "out.jsonl")]
                       for fmt in ("llava", "sharegpt", "alpaca", "internvl"))):
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                assert main(argv) in (0, 1, 2), argv
