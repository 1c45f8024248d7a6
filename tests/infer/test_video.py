"""Video on both routes: rows with generated clips train (decord on the chat route, PyAV on -HF) and infer
end to end; validate counts them exactly and reports a broken video with its line."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli

pytestmark = pytest.mark.e2e

MOVES = (("left", -1, (220, 30, 30)), ("right", 1, (220, 30, 30)), ("left", -1, (30, 60, 220)),
         ("right", 1, (30, 60, 220)))


def clips(root: Path) -> Path:
    """Four 8-frame 56x56 clips of a bar crossing the frame; the answer is the way it goes and its colour."""
    import av
    rows = []
    for i, (way, step, colour) in enumerate(MOVES):
        path = root / f"clip{i}.mp4"
        with av.open(str(path), "w") as out:
            stream = out.add_stream("mpeg4", rate=8)
            stream.width = stream.height = 56
            stream.pix_fmt = "yuv420p"
            for t in range(8):
                frame = np.full((56, 56, 3), 235, np.uint8)
                x = 4 + 6 * t if step > 0 else 44 - 6 * t
                frame[:, x:x + 8] = colour
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        name = "red" if colour[0] > 100 else "blue"
        rows.append({"messages": [{"role": "user", "content": "<video>Which way does the bar move?"},
                                  {"role": "assistant", "content": f"{name} {way}"}], "videos": [str(path)]})
    data = root / "clips.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return data


@pytest.mark.parametrize("variant", ["hf", "internvl3_5"], indirect=True)     # one run per route
def test_a_video_row_trains_and_infers(variant, tmp_path):
    data = clips(tmp_path)
    check = run_cli("-m", "data_tools", "validate", str(data), "--recipe", "recipes/tiny-demo.yaml", *(
        ["--model", str(variant.path), "--template", variant.template] if variant.is_hf else []))
    assert check.returncode == 0 and "longest sample" in check.stdout, check.stdout + check.stderr   # counted
    out = run_cli("train.py", "recipes/tiny-demo.yaml", *variant.overrides, f"dataset=[{data}]", "~val_dataset",
                  "num_train_epochs=40", "save_steps=40", "eval_steps=1000", "logging_steps=10", "max_length=512",
                  f"output_dir={tmp_path / 'out'}")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    (run,) = (tmp_path / "out").iterdir()
    logged = [json.loads(x) for x in (run / "logging.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in logged if "loss" in r]
    assert losses[-1] < losses[0] / 2                                  # it trained on the videos
    log = (run / "swift.log").read_text()
    assert "Traceback" not in log and "No module named" not in log       # decord / PyAV are there
    inf = run_cli("infer.py", str(run), "--dataset", str(data), "--compare-base", "--max-new-tokens", "6")
    assert inf.returncode == 0, inf.stdout[-2000:] + inf.stderr[-3000:]
    rows = [json.loads(x) for x in (run / "checkpoint-40" / "infer" / "clips.jsonl").read_text().splitlines()]
    assert len(rows) == 4 and all("prediction" in r and "error" not in r for r in rows)
    metrics = json.loads((run / "checkpoint-40" / "infer" / "clips.metrics.json").read_text())["metrics"]
    assert metrics["tuned"]["chrf"] > metrics["base"]["chrf"], metrics


def test_a_broken_video_is_reported_with_its_line(tmp_path):
    data = clips(tmp_path)
    (tmp_path / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"not a movie" * 20)
    rows = data.read_text().splitlines()
    rows.insert(1, json.dumps({"messages": [{"role": "user", "content": "<video>?"}, {"role": "assistant",
                                                                                      "content": "x"}],
                               "videos": [str(tmp_path / "broken.mp4")]}))
    data.write_text("\n".join(rows) + "\n")
    out = run_cli("-m", "data_tools", "validate", str(data), "--no-tokens")
    assert out.returncode == 1
    (line,) = [x for x in out.stdout.splitlines() if x.startswith(f"{data}:2: error video-bad: video ")]
    assert "does not open as a video" in line            # (a long path is shortened in the message)
