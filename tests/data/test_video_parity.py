"""Video rows through swift's loader and each template's encode (decord on the chat route, PyAV on -HF) and
through validate, for internvl_hf, internvl2_5 and internvl3_5: the same verdict and the same token count for
every row. The chat route takes VIDEO_SEGMENTS frames of any video and tiles them (and the sample's images)
with VIDEO_MAX_NUM; the -HF route keeps every frame the stream declares. A file that is no video is refused by
both."""
from __future__ import annotations

import json
import random

import numpy as np
import pytest
from PIL import Image

import parity

CLIPS = (("wide", (64, 48), 16), ("tall", (48, 96), 5), ("long", (120, 40), 30), ("square", (56, 56), 9))


def clip(path, size, frames, seed):
    import av
    rng = np.random.default_rng(seed)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for _ in range(frames):
            frame = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    videos = {}
    for i, (name, size, frames) in enumerate(CLIPS):
        clip(root / f"{name}.mp4", size, frames, i)
        videos[name] = str(root / f"{name}.mp4")
    (root / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a movie" * 20)
    (root / "text.mp4").write_text("hello")
    image = root / "still.png"
    Image.new("RGB", (200, 100), "white").save(image)
    rng, files = random.Random(7), []
    shapes = [
        lambda v: ({"role": "user", "content": "<video>What moves?"}, [v[0]], []),
        lambda v: ({"role": "user", "content": "What moves?"}, [v[0]], []),                      # tag prepended
        lambda v: ({"role": "user", "content": "<image>and <video>: same?"}, [v[0]], [str(image)]),
        lambda v: ({"role": "user", "content": "<video><video>Which is longer?"}, v[:2], []),
        lambda v: ({"role": "user", "content": "Compare <video> with <image>"}, [v[0]], [str(image), str(image)]),
    ]
    names = list(videos)
    for i in range(40):
        picks = [videos[n] for n in rng.sample(names, 2)]
        if i % 8 == 7:
            picks[0] = str(root / rng.choice(["broken.mp4", "text.mp4"]))
        user, vids, images = shapes[i % len(shapes)](picks)
        row = {"messages": [user, {"role": "assistant", "content": f"a bar v{i}x"}], "videos": vids}
        if images:
            row["images"] = images
        if i % 5 == 4:
            row["messages"] = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}] + row["messages"]
        path = root / f"video{i:03d}.jsonl"
        sentinel = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": f"fine v{i}ok"}]}
        path.write_text(json.dumps(sentinel) + "\n" + json.dumps(row) + "\n")
        files.append((path, [f"v{i}ok", f"v{i}x"]))
    return files


def test_video_rows_agree_with_swift_on_every_template(corpus):
    found, tally = parity.compare_files(corpus)
    assert found == [], f"{len(found)} disagreement(s):\n" + "\n".join(found[:40])
    # the sentinels (40 per template) and most video rows train with equal counts; broken files and the -HF
    # rows whose two videos differ in length are refused by both
    assert tally["row trained, equal tokens"] >= 3 * (40 + 30) and tally["row refused by both"] >= 3 * 5, tally


def test_the_recipes_video_knobs_reach_the_count(tmp_path, monkeypatch):
    """internvl.video_segments / video_max_num (VIDEO_SEGMENTS / VIDEO_MAX_NUM for swift) change the count."""
    from swift import get_processor, get_template

    from data_tools.tokens import Counter, TilingConfig
    from data_tools.video import read_header
    from internvl_kit.models import builtin
    clip(tmp_path / "c.mp4", (112, 56), 6, 0)
    model = builtin.resolve("builtin:tiny-internvl3_5")
    row = {"messages": [{"role": "user", "content": "<video>What moves?"}, {"role": "assistant", "content": "a bar"}],
           "videos": [str(tmp_path / "c.mp4")]}
    for segments, max_num in ((4, 1), (3, 3)):
        for var, value in (("VIDEO_SEGMENTS", segments), ("VIDEO_MAX_NUM", max_num), ("MAX_NUM", 6), ("INPUT_SIZE", 56)):
            monkeypatch.setenv(var, str(value))
        template = get_template(get_processor(str(model), download_model=False), template_type="internvl3_5")
        template.set_mode("train")
        for var in ("VIDEO_SEGMENTS", "VIDEO_MAX_NUM"):
            monkeypatch.delenv(var)                   # ours must come from the knobs, not the environment
        counter = Counter("internvl3_5", TilingConfig.for_model(model, "internvl3_5", 6, 56, segments, max_num), model)
        ours = counter.total(row["messages"], [], None, [read_header(row["videos"][0])])
        assert ours == len(template.encode(json.loads(json.dumps(row)))["input_ids"]), (segments, max_num)
