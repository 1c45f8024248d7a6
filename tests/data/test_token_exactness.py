"""The preflight's token count equals the length of swift's own template.encode input_ids.

For the -HF template on the tiny model and for swift's internvl3_5 / internvl2_5 templates (448-px
tiling with MAX_NUM) using the tiny tokenizer: multi-image, text-only, system, multi-turn, missing
tags, and aspect ratios that hit every tie-breaking rule of the tiling.
"""
from __future__ import annotations

import pytest
from PIL import Image

from data_tools.tokens import Counter, TilingConfig

SIZES = [(640, 480), (1000, 1000), (1280, 720), (448, 448), (500, 400), (100, 300), (2000, 200), (56, 112),
         (112, 56), (800, 600)]
SAMPLES = [
    ("single image", [{"role": "user", "content": "<image>What is this?"},
                      {"role": "assistant", "content": "a red circle"}], [(640, 480)]),
    ("text only + system", [{"role": "system", "content": "You are helpful."},
                            {"role": "user", "content": "hello there"}, {"role": "assistant", "content": "hi"}], []),
    ("multi-image multi-turn", [{"role": "user", "content": "Compare <image> and <image> please"},
                                {"role": "assistant", "content": "same"},
                                {"role": "user", "content": "sure?"},
                                {"role": "assistant", "content": "yes \\frac{a}{b}"}], [(1000, 1000), (1280, 720)]),
    ("missing tag", [{"role": "user", "content": "no tag here"}, {"role": "assistant", "content": "ok"}],
     [(448, 448)]),
    ("two tags in a row", [{"role": "user", "content": "<image><image>x"},
                           {"role": "assistant", "content": "ok"}], [(100, 300), (2000, 200)]),
    ("system + image in second turn", [{"role": "system", "content": "Be brief."},
                                       {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                                       {"role": "user", "content": "and this? <image>"},
                                       {"role": "assistant", "content": "a square"}], [(500, 400)]),
    ("digits and unicode", [{"role": "user", "content": "<image>Using LaTeX to perform OCR on image 5. 12 345"},
                            {"role": "assistant", "content": "x_{5}^{2} + \\frac{5}{6} = 0.75 ≈ ¾ 公式"}],
     [(64, 48)]),
] + [(f"aspect {w}x{h}", [{"role": "user", "content": "<image>\nRead it."},
                          {"role": "assistant", "content": "x^{2}"}], [(w, h)]) for w, h in SIZES]


@pytest.fixture(scope="module")
def swift_processor(tiny_model):
    from swift import get_processor
    return get_processor(str(tiny_model), model_type="internvl", download_model=False)


@pytest.mark.parametrize("template,max_num", [("internvl_hf", None), ("internvl3_5", 6), ("internvl2_5", 12),
                                              ("internvl3_5", 1)])
def test_preflight_equals_swift_encode(template, max_num, swift_processor, tiny_model, monkeypatch):
    from swift import get_template
    if max_num is not None:
        monkeypatch.setenv("MAX_NUM", str(max_num))
    else:
        monkeypatch.delenv("MAX_NUM", raising=False)
    tpl = get_template(swift_processor, template_type=template)
    tpl.set_mode("train")
    counter = Counter(template, TilingConfig.for_model(tiny_model, template, max_num, None), tiny_model)
    assert counter.exact
    for name, messages, sizes in SAMPLES:
        images = [Image.new("RGB", s, "red") for s in sizes]
        encoded = tpl.encode({"messages": [dict(m) for m in messages], "images": images})
        assert counter.count(messages, sizes).total == len(encoded["input_ids"]), name
