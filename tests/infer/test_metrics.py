"""Metrics with hand-computed values."""
import pytest

from internvl_kit.infer.metrics import cer, edit_distance, normalize, score


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
    assert s["bleu"] is None                      # references under four words: BLEU would say 0
    assert 0 < s["chrf"] < 100
    assert score(["the cat sat on the mat"], ["the cat sat on the mat"])["bleu"] == pytest.approx(100)
    assert score([], [])["samples"] == 0


def test_short_answers_get_chrf_not_a_zero_bleu():
    """The case that misled: 3-word answers, exact match 0 -> 0.625, BLEU 0.059 -> 0.000."""
    refs = ["a red circle", "a blue square", "a green star", "a red square"] * 2
    before = score(["circle", "blue", "a star", "red"] * 2, refs)
    after = score(["a red circle", "a blue square", "a green star", "a red circle"] * 2, refs)
    assert before["bleu"] is None and after["bleu"] is None
    assert after["chrf"] > before["chrf"] and after["exact_match"] > before["exact_match"]


def _textbook_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def test_edit_distance_equals_the_textbook_dynamic_programme():
    import random
    rng = random.Random(0)
    for _ in range(200):
        a = "".join(rng.choice("ab{}^_ 公式") for _ in range(rng.randint(0, 40)))
        b = "".join(rng.choice("ab{}^_ 公式") for _ in range(rng.randint(0, 40)))
        assert edit_distance(a, b) == _textbook_distance(a, b), (a, b)


def test_boxes_are_parsed_as_internvl_writes_them_and_scored_by_iou():
    from internvl_kit.infer import boxes
    parsed = boxes.parse("<ref>cat</ref><box>[[100, 200, 300, 400]]</box>, <box>[[30,40,10,20],[5,6,7,8]]</box>")
    assert [(b.label, b.x1, b.y1, b.x2, b.y2) for b in parsed] == [
        ("cat", 100, 200, 300, 400), (None, 10, 20, 30, 40), (None, 5, 6, 7, 8)]   # corners put in order
    a, b = boxes.Box(None, 0, 0, 100, 100), boxes.Box(None, 50, 0, 150, 100)
    assert boxes.iou(a, b) == pytest.approx(1 / 3) and boxes.iou(a, a) == 1.0
    assert boxes.iou(a, boxes.Box(None, 200, 200, 300, 300)) == 0.0
    # IoU on the grid is IoU in pixels: x and y scale by constants
    px = [boxes.Box(None, *q.pixels(640, 480)) for q in (a, b)]
    assert boxes.iou(*px) == pytest.approx(boxes.iou(a, b))
    ref_one, ref_two = "<box>[[0, 0, 100, 100]]</box>", "<box>[[0, 0, 100, 100], [500, 500, 600, 600]]</box>"
    m = boxes.score(["<box>[[0, 0, 100, 100]]</box>", "no box at all",
                     "<box>[[0, 0, 100, 90], [900, 900, 950, 950], [0, 0, 99, 99]]</box>", "plain"],
                    [ref_one, ref_one, ref_two, "plain"])
    assert m["referring_rows"] == 2 and m["mean_iou"] == pytest.approx(0.5) and m["acc_at_0.5"] == 0.5
    assert m["multi_box_rows"] == 1 and m["precision_at_0.5"] == pytest.approx(1 / 3) and m["recall_at_0.5"] == 0.5
    assert m["box_rows"] == 3 and boxes.score(["a"], ["b"]) == {}
