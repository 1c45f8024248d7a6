"""Validate throughput, measured in one run, as ratios (no absolute targets asserted anywhere).

    python benchmarks/bench_validate.py [--n 100000] [--naive-n 5000] [--encode-n 200]

Generates N samples, each with its own small image file, then times on the same files:
  floor      orjson parse + os.stat + image header read per line (the least any checker must do)
  validate   data_tools validate without the token preflight, and with it (exact, tiny tokenizer)
  naive      json + jsonschema per line + full PIL decode (what a hand-written checker does)
  encode     swift's template.encode (internvl3_5: 448-px tiles, MAX_NUM=12) vs the preflight, same
             samples, checking that both agree exactly
and the peak traced memory of validate on N/10 and N samples (streaming: it should not grow with N).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

SIZES = [(64, 48), (48, 64), (80, 40), (56, 56), (96, 72), (40, 120)]


def generate(d: Path, n: int) -> Path:
    from PIL import Image
    blobs = []
    for w, h in SIZES:
        buf = io.BytesIO()
        Image.new("RGB", (w, h), (w, h, 90)).save(buf, format="PNG")
        blobs.append(buf.getvalue())
    (d / "img").mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(n):
        p = d / "img" / f"{i}.png"
        p.write_bytes(blobs[i % len(blobs)])
        lines.append(json.dumps({"messages": [
            {"role": "user", "content": f"<image>Using LaTeX to perform OCR on image {i}."},
            {"role": "assistant", "content": f"x_{{{i}}}^{{2}} + \\frac{{{i % 97}}}{{{i % 13 + 1}}}"}],
            "images": [str(p)]}))
    f = d / "data.jsonl"
    f.write_text("\n".join(lines) + "\n")
    return f


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def floor(path: Path) -> None:
    import orjson
    from data_tools.images import read_header
    with open(path, "rb") as f:
        for raw in f:
            row = orjson.loads(raw)
            for p in row["images"]:
                os.stat(p)
                read_header(p)


def naive(path: Path, limit: int) -> None:
    from jsonschema import Draft202012Validator
    from PIL import Image
    from data_tools.schema import ROW_SCHEMA
    validator = Draft202012Validator(ROW_SCHEMA)        # compiled once: the fair naive version
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f):
            if i >= limit:
                break
            row = json.loads(line)
            validator.validate(row)
            for p in row["images"]:
                with Image.open(p) as im:
                    im.load()


def validate(path: Path, counter, limit_lines: int | None = None) -> None:
    from data_tools.validate import Options, Report, Validator
    v = Validator(Options(max_length=4096, counter=counter))
    if limit_lines is not None:
        src = path.with_name(f"head{limit_lines}.jsonl")
        with open(path, "rb") as f, open(src, "wb") as g:
            for i, raw in enumerate(f):
                if i >= limit_lines:
                    break
                g.write(raw)
        path = src
    v.validate_file(path, Report(), lambda issue: None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--naive-n", type=int, default=5000)
    ap.add_argument("--encode-n", type=int, default=200)
    a = ap.parse_args()
    from internvl_kit.models import builtin
    from data_tools.tokens import Counter, TilingConfig

    tiny = builtin.resolve("builtin:tiny-internvl-hf")
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        data = generate(Path(tmp), a.n)
        print(f"generated {a.n} samples with {a.n} images in {time.perf_counter() - t:.1f}s")
        floor(data)                                         # warm the page cache for everyone
        hf_counter = Counter("internvl_hf", TilingConfig.for_model(tiny, "internvl_hf", None, None), tiny)
        t_floor = timed(lambda: floor(data))
        t_plain = timed(lambda: validate(data, None))
        t_tok = timed(lambda: validate(data, hf_counter))
        naive_n = min(a.naive_n, a.n)
        t_naive = timed(lambda: naive(data, naive_n)) * a.n / naive_n
        rate = lambda s: a.n / s  # noqa: E731
        print(f"floor (orjson + stat + header)   {t_floor:7.2f}s  {rate(t_floor):9.0f} samples/s")
        print(f"validate, no token preflight     {t_plain:7.2f}s  {rate(t_plain):9.0f} samples/s  "
              f"{t_plain / t_floor:.2f}x floor")
        print(f"validate + exact token preflight {t_tok:7.2f}s  {rate(t_tok):9.0f} samples/s  "
              f"{t_tok / t_floor:.2f}x floor")
        print(f"naive (json+jsonschema+decode)   {t_naive:7.2f}s  {rate(t_naive):9.0f} samples/s  "
              f"(from {naive_n} samples)  validate is {t_naive / t_plain:.1f}x faster")

        small = max(a.n // 10, 1)
        peaks = []
        for lines in (small, a.n):
            tracemalloc.start()
            validate(data, hf_counter, lines)
            peaks.append(tracemalloc.get_traced_memory()[1] / 2**20)
            tracemalloc.stop()
        print(f"peak traced memory: {peaks[0]:.1f} MiB for {small} samples, {peaks[1]:.1f} MiB for {a.n}")

        encode_vs_preflight(data, tiny, min(a.encode_n, a.n))
    return 0


def encode_vs_preflight(data: Path, tiny: Path, n: int) -> None:
    os.environ["MAX_NUM"] = "12"
    from swift import get_processor, get_template
    from data_tools.tokens import Counter, TilingConfig
    proc = get_processor(str(tiny), model_type="internvl", download_model=False)
    tpl = get_template(proc, template_type="internvl3_5")
    tpl.set_mode("train")
    rows = [json.loads(x) for x in data.read_text().splitlines()[:n]]
    from data_tools.images import read_header
    swift_lens = []
    t_enc = time.perf_counter()
    for r in rows:
        swift_lens.append(len(tpl.encode({"messages": r["messages"], "images": r["images"]})["input_ids"]))
    t_enc = time.perf_counter() - t_enc
    fresh = Counter("internvl3_5", TilingConfig.for_model(tiny, "internvl3_5", 12, None), tiny)
    t_pre = time.perf_counter()
    ours = [fresh.total(r["messages"], [(i.width, i.height) for i in map(read_header, r["images"])])
            for r in rows]                                  # header reads included: the preflight's whole job
    t_pre = time.perf_counter() - t_pre
    agree = sum(a == b for a, b in zip(ours, swift_lens))
    print(f"swift encode (internvl3_5, 448px) {n / t_enc:9.1f} samples/s; preflight {n / t_pre:9.0f} samples/s: "
          f"{t_enc / t_pre:.0f}x faster; exact agreement {agree}/{n} (mean {sum(ours) / n:.0f} tokens)")


if __name__ == "__main__":
    sys.exit(main())
