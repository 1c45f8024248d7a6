"""Metrics with hand-computed values."""
import pytest

from internvl_kit.metrics import cer, edit_distance, normalize, score


def test_edit_distance_and_cer():
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance("", "abc") == 3 and edit_distance("abc", "") == 3 and edit_distance("", "") == 0
    assert edit_distance("公式", "公示") == 1                       # unicode: characters, not bytes
    assert cer("kitten", "sitting") == pytest.approx(3 / 7)
    assert cer("", "") == 0.0 and cer("x", "") == 1.0 and cer("", "ab") == 1.0


def test_normalize_latex_spacing_and_whitespace():
    assert normalize(r"x ^ { 2 } + y") == "x^{2}+y"
    assert normalize(r"a\,b \quad c") == normalize("a b c") == "a b c"
    assert normalize("  a   red\tcircle \n") == "a red circle"
    assert normalize(r"\frac{a}{b}") == normalize(r"\frac { a } { b }")
    assert normalize("ab") != normalize("a b")                    # spaces between words still count


def test_score_corpus_values():
    s = score(["a red circle", "x^{2}", ""], ["a red circle", "x ^ {2}", "abc"])
    assert s["samples"] == 3
    assert s["exact_match"] == pytest.approx(1 / 3)
    assert s["normalized_exact_match"] == pytest.approx(2 / 3)
    # edits: 0 + 2 (two spaces) + 3 (empty vs abc); reference characters: 12 + 7 + 3
    assert s["cer"] == pytest.approx(5 / 22)
    assert 0 <= s["bleu"] <= 100
    assert score(["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(100)
    assert score([], [])["samples"] == 0
