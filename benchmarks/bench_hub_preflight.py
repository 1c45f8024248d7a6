"""The headline recipe's preflight against swift's template.encode, on the same rows, as a ratio.

    python benchmarks/bench_hub_preflight.py [--encode-n 1000]

Serves the generated LaTeX_OCR (tests/hub_datasets.py: human_handwrite 1,200 / 68 / 70) from the stand-in hub
on 127.0.0.1 and times, in one run:
  preflight  the whole data plan of `AI-ModelScope/LaTeX_OCR:human_handwrite#20000`: swift's loader per split
             and as `swift sft` calls it, content hashes, data_tools row checks and exact token counts over
             the 19,987 sampled training rows and the 13 held out (448-px tiles, MAX_NUM=12 as the recipe)
  encode     swift's template.encode (internvl3_5, 448-px tiles, MAX_NUM=12) on --encode-n of those training
             rows, extrapolated to all of them: what swift spends on the same rows before its first step
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):   # they stop the dataset loader
    os.environ.pop(var, None)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--encode-n", type=int, default=1000, help="training rows to encode (the rest extrapolated)")
    a = ap.parse_args()
    from hub_datasets import LATEX_OCR_ID, latex_ocr_files
    from hub_server import StandInHub

    with tempfile.TemporaryDirectory() as tmp, StandInHub({}) as hub:
        hub.state.add_dataset(LATEX_OCR_ID, latex_ocr_files())
        os.environ.update(MODELSCOPE_ENDPOINT=hub.endpoint, MODELSCOPE_CACHE=f"{tmp}/ms", HF_HOME=f"{tmp}/hf",
                          MODELSCOPE_HOME=f"{tmp}/ms-home", HF_UPDATE_DOWNLOAD_COUNTS="0",
                          NO_PROXY="127.0.0.1,localhost", MAX_NUM="12")
        from internvl_kit.models import builtin
        from internvl_kit.train import data_plan, swift_data
        tiny = builtin.resolve("builtin:tiny-internvl-hf")
        data = {"model": str(tiny), "template": "internvl3_5", "max_length": 4096, "num_train_epochs": 1,
                "dataset": ["AI-ModelScope/LaTeX_OCR:human_handwrite#20000"], "split_dataset_ratio": 0.01}
        swift_data.load_like_sft(data)          # download once: both sides below read the local cache
        t = time.perf_counter()
        plan, findings = data_plan.make(data, {"max_num": 12}, "bench")
        t_plan = time.perf_counter() - t
        assert not findings, findings
        train, _ = swift_data.load_like_sft(data)

        from swift import get_processor, get_template
        proc = get_processor(str(tiny), model_type="internvl", download_model=False)
        tpl = get_template(proc, template_type="internvl3_5")
        tpl.set_mode("train")
        n = min(a.encode_n, len(train))
        rows = [train[i] for i in range(n)]
        t = time.perf_counter()
        for r in rows:
            tpl.encode({"messages": r["messages"], "images": r["images"]})
        t_enc = (time.perf_counter() - t) * len(train) / n
    print(f"rows: {plan.training:,} training ({plan.training_unique:,} distinct) + {plan.held_out} held out; "
          f"tokens {plan.tokens}")
    print(f"preflight (whole data plan, loads included) {t_plan:8.2f}s")
    print(f"swift template.encode, {len(train):,} rows       {t_enc:8.2f}s  (from {n} rows encoded)")
    print(f"preflight / encode: {t_plan / t_enc:.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
