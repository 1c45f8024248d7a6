"""Generated hub datasets for the stand-in hub: one shaped like ModelScope's `AI-ModelScope/LaTeX_OCR`.

Same subsets and splits as the real one for the two that matter (`human_handwrite` 1,200 / 68 / 70 and
`small` 50 / 30 / 30, the real row counts), parquet files named as the hub names them
(`<subset>/<split>-00000-of-00001.parquet`, columns `image` {bytes, path} and `text`) and a dataset card
whose `configs` YAML is what the modelscope client reads to find them. Every row is a distinct formula
drawn into a small distinct image, so a content hash tells rows apart.
"""
from __future__ import annotations

import io
import random

LATEX_OCR_ID = "AI-ModelScope/LaTeX_OCR"
LATEX_OCR_SPLITS = {"human_handwrite": {"train": 1200, "validation": 68, "test": 70},
                    "small": {"train": 50, "validation": 30, "test": 30}}
_SYMBOLS = ["a", "b", "x", "y", "z", "\\alpha", "\\beta", "\\pi", "n", "k"]
_OPS = ["+", "-", "=", "<", "\\cdot"]


def _formula(rng: random.Random, i: int) -> str:
    """A formula that is distinct for each i (the index is in it), varied in shape like OCR targets."""
    a, b = rng.choice(_SYMBOLS), rng.choice(_SYMBOLS)
    shape = i % 4
    if shape == 0:
        return f"\\frac {{ {a} _ {{ {i} }} }} {{ {b} {rng.choice(_OPS)} {i % 9 + 1} }}"
    if shape == 1:
        return f"{a} ^ {{ {i} }} {rng.choice(_OPS)} \\sqrt {{ {b} }}"
    if shape == 2:
        return f"\\sum _ {{ {a} = 1 }} ^ {{ {i} }} {b} _ {{ {a} }}"
    return f"( {a} {rng.choice(_OPS)} {b} ) ^ {{ {i % 7 + 2} }} = {i}"


def _image(text: str, seed: int) -> bytes:
    """A small PNG with the formula written into it: distinct bytes per row, a few hundred bytes each."""
    from PIL import Image, ImageDraw
    width = 40 + 4 * min(len(text), 40)
    img = Image.new("L", (width, 28), 255)
    draw = ImageDraw.Draw(img)
    draw.text((2, 8), text[:40], fill=seed % 96)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# What `datasets` writes into the parquet schema, so the `image` column is read back as an Image feature.
_HF_FEATURES = {"info": {"features": {"image": {"_type": "Image"}, "text": {"dtype": "string", "_type": "Value"}}}}


def _parquet(rows: list[dict]) -> bytes:
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    image_type = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    table = pa.table({"image": pa.array([r["image"] for r in rows], type=image_type),
                      "text": pa.array([r["text"] for r in rows], type=pa.string())})
    table = table.replace_schema_metadata({"huggingface": json.dumps(_HF_FEATURES)})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _card(splits: dict[str, dict[str, int]]) -> bytes:
    """The dataset card: `dataset_info` (features, split sizes) and `configs` (where each split lies)."""
    lines = ["---", "dataset_info:"]
    for subset, counts in splits.items():
        lines += [f"- config_name: {subset}", "  features:", "  - name: image", "    dtype: image",
                  "  - name: text", "    dtype: string", "  splits:"]
        lines += [f"  - name: {split}\n    num_examples: {n}" for split, n in counts.items()]
    lines.append("configs:")
    for subset, counts in splits.items():
        lines += [f"- config_name: {subset}", "  data_files:"]
        lines += [f"  - split: {split}\n    path: {subset}/{split}-*" for split in counts]
    lines += ["---", "", "# LaTeX_OCR (generated stand-in)", ""]
    return "\n".join(lines).encode()


def latex_ocr_files(splits: dict[str, dict[str, int]] | None = None) -> dict[str, bytes]:
    """The repository files of the generated LaTeX_OCR: README.md plus one parquet file per subset and split."""
    splits = splits or LATEX_OCR_SPLITS
    rng = random.Random(0)
    files = {"README.md": _card(splits)}
    i = 0
    for subset, counts in splits.items():
        for split, n in counts.items():
            rows = []
            for _ in range(n):
                text = _formula(rng, i)
                rows.append({"image": {"bytes": _image(text, i), "path": f"{i}.png"}, "text": text})
                i += 1
            files[f"{subset}/{split}-00000-of-00001.parquet"] = _parquet(rows)
    return files
