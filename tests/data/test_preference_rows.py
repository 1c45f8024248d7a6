"""Preference rows (DPO/MPO) against swift's own loader and its template in rlhf mode, on each template:
validate's verdict on every case is swift's, and where both take the row, the chosen and the rejected side
each have swift's token count."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from parity import oracles, swift_load

Q = "<image>What shape is in the picture?"


def _cases(square: str, wide: str) -> dict[str, tuple[dict, bool]]:
    """name -> (row, whether swift trains it). The marker is the name, in the user turn."""
    def pair(name: str, answer: str = "a red circle", **extra) -> dict:
        return {"messages": [{"role": "user", "content": f"{Q} {name}"}, {"role": "assistant", "content": answer}],
                "images": [square], **extra}
    multi = {"messages": [{"role": "user", "content": f"{Q} multi"}, {"role": "assistant", "content": "a circle"},
                          {"role": "user", "content": "And its colour?"}, {"role": "assistant", "content": "red"}],
             "images": [square], "rejected_response": "I cannot tell."}
    return {
        "plain": (pair("plain", rejected_response="I cannot tell what is in this picture."), True),
        "equal": (pair("equal", rejected_response="a red circle"), False),
        "null": (pair("null", rejected_response=None), False),
        "other-image": (pair("other-image", rejected_response="a blue square", rejected_images=[wide]), True),
        "as-list": (pair("as-list", rejected_response=[{"role": "assistant", "content": "no idea"}]), True),
        "list-user": (pair("list-user", rejected_response=[{"role": "user", "content": "hm"},
                                                           {"role": "assistant", "content": "no idea"}]), False),
        "list-equal": (pair("list-equal", rejected_response=[{"role": "assistant", "content": "a red circle"}]),
                       False),
        "multi-turn": (multi, True),
        "long-rejected": (pair("long-rejected", rejected_response="no " * 120), True),
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> dict[str, tuple[Path, bool]]:
    root = tmp_path_factory.mktemp("preference-rows")
    Image.new("RGB", (56, 56), (200, 30, 30)).save(root / "square.png")
    Image.new("RGB", (168, 56), (30, 30, 200)).save(root / "wide.png")
    out = {}
    for name, (row, trains) in _cases(str(root / "square.png"), str(root / "wide.png")).items():
        path = root / f"{name}.jsonl"          # one row per file: a column's type stays one per file
        path.write_text(json.dumps(row) + "\n")
        out[name] = (path, trains)
    return out


def _swift(path: Path, template) -> tuple[int, int] | None:
    """(chosen, rejected) token counts of the file's row as swift trains it, or None when it does not."""
    rows = swift_load(path)
    if not rows:
        return None
    template.set_mode("rlhf")
    try:
        enc = template.encode(rows[0])
    except Exception:  # noqa: BLE001 - swift's template refusing the row
        return None
    finally:
        template.set_mode("train")
    return len(enc["chosen_input_ids"]), len(enc["rejected_input_ids"])


def _ours(path: Path, validator) -> tuple[tuple[int, int] | None, list[str]]:
    from data_tools import preference
    from data_tools.validate import ERRORS, Report
    issues: list[tuple[str, str]] = []
    seen: list = []
    validator.validate_file(path, Report(), lambda i: issues.append((i.code, i.message)),
                            on_row=lambda n, codes, sample: seen.append(sample))
    errors = [f"{c}: {m}" for c, m in issues if c in ERRORS]
    (sample,) = seen
    if sample is None or errors:
        return None, errors
    counter = validator.opts.counter
    chosen = counter.total(sample.row["messages"], sample.image_sizes, validator.opts.max_num)
    rejected = counter.total(preference.rejected_messages(sample.row), sample.rejected_sizes, validator.opts.max_num)
    return (chosen, rejected), errors


@pytest.mark.parametrize("template", ["internvl3_5", "internvl2_5", "internvl_hf"])
def test_validate_agrees_with_swifts_loader_and_rlhf_template_on_preference_rows(template, corpus):
    (oracle,) = oracles([template])
    wrong = []
    for name, (path, trains) in corpus.items():
        swift = _swift(path, oracle.template)
        ours, errors = _ours(path, oracle.validator)
        assert (swift is not None) == trains, f"{name}: the case's own expectation is wrong"
        if (ours is None) != (swift is None):
            wrong.append(f"{name}: swift {'trains' if swift else 'refuses'} it, validate "
                         f"{'refuses' if ours is None else 'accepts'} it {errors}")
        elif ours != swift:
            wrong.append(f"{name}: token counts (chosen, rejected) swift {swift}, validate {ours}")
        elif ours is None:
            assert any(e.startswith("rejected: ") for e in errors), (name, errors)
    assert wrong == []
    # the rejected side is counted on its own: another image, another length
    assert _ours(corpus["other-image"][0], oracle.validator)[0][1] != _ours(corpus["plain"][0], oracle.validator)[0][1]


def test_each_side_is_held_to_max_length_and_the_message_names_the_side(corpus):
    from data_tools.validate import Options, Report, Validator
    (oracle,) = oracles(["internvl3_5"])
    chosen, rejected = _ours(corpus["long-rejected"][0], oracle.validator)[0]
    assert chosen < rejected
    tight = Validator(Options(counter=oracle.validator.opts.counter, max_length=chosen + 1))
    issues: list = []
    tight.validate_file(corpus["long-rejected"][0], Report(), issues.append)
    (too_long,) = [i.message for i in issues if i.code == "too-long"]
    assert too_long.startswith(f"rejected side: {rejected} tokens > max_length {chosen + 1}"), too_long
