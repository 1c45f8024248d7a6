"""A run directory as train.py and infer.py leave it, generated without training: swift's logging.jsonl
rows (with a resume that logs some steps again), the run record, checkpoints, and infer.py's scored
predictions of generated images, some LaTeX, some wrong, some that could not run. For the report's page
tests and its benchmark (10,000 steps, 1,000 predictions)."""
from __future__ import annotations

import json
import math
import random
from pathlib import Path

from PIL import Image, ImageDraw

LATEX = [r"\frac{a}{b}+x^{2}", r"\sqrt{x_{1}^{2}+y^{2}}", r"\int_{0}^{1} f(x)\,dx", r"\sum_{i=1}^{n} i^{2}",
         r"e^{i\pi}+1=0", r"\alpha_{t}=\beta^{2}"]
WORDS = ["a red circle", "a blue square", "a green triangle", "a yellow star"]


def _image(path: Path, rng: random.Random, wide: bool) -> None:
    size = (480, 96) if wide else (320, 320)
    im = Image.new("RGB", size, tuple(rng.randrange(256) for _ in range(3)))
    draw = ImageDraw.Draw(im)
    for _ in range(6):
        x, y = rng.randrange(size[0] - 40), rng.randrange(size[1] - 40)
        draw.rectangle((x, y, x + 40, y + 30), fill=tuple(rng.randrange(256) for _ in range(3)))
    im.save(path, "JPEG", quality=90)


def make_run(root: Path, *, steps: int = 120, predictions: int = 16, lora_rank: int = 8, seed: int = 0,
             resume_at: int | None = 60, logging_steps: int = 1, images: int | None = None) -> Path:
    """The run directory (root/<name>). `images`: distinct image files (default one per prediction)."""
    rng = random.Random(seed)
    run = root / f"synthetic-r{lora_rank}-s{seed}"
    run.mkdir(parents=True)
    save_every = max(1, steps // 4)
    lines = []

    def log_rows(first: int, last: int, offset: float) -> None:
        for step in range(first, last + 1):
            if step % logging_steps and step != 1:
                continue
            loss = 0.5 + 4 * math.exp(-step / (steps / 5)) + offset + rng.gauss(0, 0.08)
            lines.append({"loss": round(loss, 6), "grad_norm": abs(rng.gauss(1.5, 0.5)),
                          "learning_rate": 1e-4 * (1 - step / steps), "token_acc": min(1.0, step / steps + 0.1),
                          "epoch": step / steps, "global_step/max_steps": f"{step}/{steps}",
                          "elapsed_time": f"{step}s", "remaining_time": "0s", "train_speed(s/it)": 0.3 + rng.random() / 10,
                          "memory(GiB)": 17.5})
            if step % save_every == 0:
                lines.append({"eval_loss": 0.6 + 3 * math.exp(-step / (steps / 4)), "eval_token_acc": step / steps,
                              "eval_runtime": 1.0, "epoch": step / steps, "global_step/max_steps": f"{step}/{steps}"})

    if resume_at:
        log_rows(1, min(steps, resume_at + save_every // 2), 0.3)       # the first attempt, stopped past the checkpoint
        log_rows(resume_at + 1, steps, 0.0)
    else:
        log_rows(1, steps, 0.0)
    text = "".join(json.dumps(r) + "\n" for r in lines)
    text += json.dumps({"train_runtime": 123.4, "train_loss": 1.2, "global_step": steps, "log_history": []}) + "\n"
    (run / "logging.jsonl").write_text(text)
    recipe = {"model": "OpenGVLab/InternVL3_5-8B", "lora_rank": lora_rank, "lora_alpha": 32, "max_length": 4096,
              "learning_rate": 1e-4, "internvl": {"max_num": 12}, "output_dir": str(root), "dataset": ["data.jsonl"]}
    base = {"lora_rank": 8, "lora_alpha": 32, "max_length": 2048, "learning_rate": 1e-4}
    counts = [rng.randrange(1, 50) for _ in range(24)]
    record = {
        "recipe_name": "synthetic", "recipe_file": str(root / "synthetic.yaml"), "recipe_chain": ["base/lora.yaml", "synthetic.yaml"],
        "overrides": [f"lora_rank={lora_rank}"], "recipe": recipe, "recipe_base": base, "model": recipe["model"],
        "model_type": "internvl_chat", "template": "internvl3_5", "swift_command": "sft",
        "command": "swift sft --model OpenGVLab/InternVL3_5-8B ...", "created": "2026-12-04T10:00:00+0000",
        "versions": {"ms-swift": "4.6.0", "transformers": "5.19.0", "torch": "2.14.1"},
        "resumed": [{"from": str(run / f"checkpoint-{resume_at}")}] if resume_at else [],
        "data_plan": {"entries": [{"key": "dataset", "entry": "data.jsonl", "source": "local", "rows": sum(counts),
                                   "unique": sum(counts), "training": sum(counts), "held_out": 0}],
                      "training": sum(counts), "held_out": predictions, "too_long_training": 2, "overlap": 0,
                      "tokens": {"p50": 900, "p90": 1800, "max": 4200}, "token_note": "tokens: exact (synthetic)",
                      "histogram": {"edges": [300 + 200 * i for i in range(25)], "counts": counts}, "warnings": []},
    }
    (run / "run.json").write_text(json.dumps(record))
    for step in range(save_every, steps + 1, save_every):
        (run / f"checkpoint-{step}").mkdir()
    last = run / f"checkpoint-{steps}"
    _predictions(run, last, rng, predictions, images)
    return run


def _predictions(run: Path, checkpoint: Path, rng: random.Random, n: int, distinct: int | None) -> None:
    (checkpoint / "infer").mkdir()
    pictures = run / "images"
    pictures.mkdir()
    paths = []
    for i in range(distinct or n):
        path = pictures / f"{i:05d}.jpg"
        _image(path, rng, wide=i % 2 == 0)
        paths.append(str(path))
    rows = []
    for i in range(n):
        latex = i % 2 == 0
        ref = LATEX[i % len(LATEX)] if latex else WORDS[i % len(WORDS)]
        row = {"messages": [{"role": "user", "content": "<image>" + ("Transcribe the formula." if latex else "What is it?")},
                            {"role": "assistant", "content": ref}], "images": [paths[i % len(paths)]], "line": i + 1}
        if i % 11 == 5:
            row["error"] = "MaxLengthError: Current length of row (5000) is larger than the max_length (4096)"
        else:
            right = rng.random() < 0.6
            row["prediction"] = ref if right else (ref[:-2] + "}" if latex else rng.choice(WORDS))
            row["prediction_base"] = rng.choice(WORDS)
            row["prompt_tokens"] = 300
        rows.append(row)
    preds = checkpoint / "infer" / "held-out.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    metrics = {"exact_match": 0.6, "normalized_exact_match": 0.62, "cer": 0.1, "chrf": 80.0, "bleu": None, "samples": n}
    base = {"exact_match": 0.1, "normalized_exact_match": 0.1, "cer": 0.9, "chrf": 20.0, "bleu": None, "samples": n}
    (checkpoint / "infer" / "held-out.metrics.json").write_text(json.dumps(
        {"checkpoint": str(checkpoint), "dataset": "held out in training", "predictions": str(preds),
         "metrics": {"base": base, "tuned": metrics}, "failed_rows": []}))
