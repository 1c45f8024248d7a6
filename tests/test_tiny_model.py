"""The tiny InternVL: small, fast, deterministic, and a real InternVL to transformers and swift."""
from __future__ import annotations

import json
import time

import pytest

from internvl_kit import tiny_model


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    t = time.perf_counter()
    a = tiny_model.build(root / "a", seed=0)
    seconds = time.perf_counter() - t
    b = tiny_model.build(root / "b", seed=0)
    c = tiny_model.build(root / "c", seed=1)
    return a, b, c, seconds


def test_small_fast_and_byte_identical_for_the_same_seed(two_builds):
    a, b, c, seconds = two_builds
    size = sum(p.stat().st_size for p in a.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    assert seconds < 15
    assert tiny_model.digest(a) == tiny_model.digest(b)
    assert tiny_model.digest(a) != tiny_model.digest(c)      # the seed really changes the weights
    assert not list(a.parent.glob(".a.*"))                   # no temp dir left behind


def test_loads_as_transformers_internvl_with_its_special_tokens(two_builds):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = two_builds[0]
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert type(model).__name__ == "InternVLForConditionalGeneration"
    tok = processor.tokenizer
    for t in tiny_model.CHATML_TOKENS + tiny_model.INTERNVL_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == model.config.image_token_id
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["architectures"] == ["InternVLForConditionalGeneration"]

    image = Image.new("RGB", (112, 56), "red")          # 2:1 -> 2 tiles + thumbnail = 3 tiles
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what?"}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    n_ctx = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert inputs["pixel_values"].shape[0] == 3
    assert n_ctx == 3 * tiny_model.TOKENS_PER_TILE
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


def test_command_line(tmp_path):
    from conftest import run_cli
    out = run_cli("-m", "internvl_kit.tiny_model", str(tmp_path / "m"), "--seed", "3")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["sha256"] == tiny_model.digest(tmp_path / "m") and info["bytes"] < 5 * 1024 * 1024
