"""benchmarks/gpu_train.py at tiny scale: the same code path as on a GPU (model, data, one train.py run per
variant, the table), on CPU with the tiny models, so the script cannot rot before a GPU is lent."""
import json

from conftest import run_cli


def test_gpu_bench_tiny_prints_the_table(tmp_path):
    work = tmp_path / "work"
    out = run_cli("benchmarks/gpu_train.py", "recipes/internvl3_5-8b-latex-ocr.yaml", "--scale", "tiny",
                  "--work", str(work), timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    lines = out.stdout.splitlines()
    header = next(x for x in lines if x.startswith("# recipes/internvl3_5-8b-latex-ocr.yaml at tiny scale"))
    assert "OpenGVLab/InternVL3_5-8B shape" in header and "3 steps x 16 samples" in header
    assert "memory n/a" in header and "swift 4.6" in header
    rows = {x.split()[0]: x for x in lines[lines.index(header) + 2:] if x.strip()}
    # The default variants: the recipe's own flags, sdpa and batch 4 run; the flash-attention and Liger
    # variants say why they cannot run here instead of failing.
    for name in ("seed", "sdpa", "batch4"):
        cells = rows[name].split()
        assert float(cells[1]) > 0 and float(cells[2]) > float(cells[1]), rows[name]   # tokens/s > samples/s
        assert cells[3:] == ["n/a"] * 4, rows[name]
    assert "flash_attn is not installed" in rows["padding_free"]
    assert "liger_kernel is not installed" in rows["liger"]
    results = json.loads((work / "results.json").read_text())
    batch4 = next(r for r in results["results"] if r["variant"] == "batch4")
    # Same effective batch: 4 per step x 4 accumulation = the recipe's 1 x 16.
    assert batch4["overrides"] == ["per_device_train_batch_size=4", "gradient_accumulation_steps=4"]
    assert results["tokens_per_sample"] > 50          # a 56 px tile's image tokens plus a formula


def test_gpu_bench_refuses_real_scale_without_gpu():
    out = run_cli("benchmarks/gpu_train.py", "recipes/internvl3_5-8b-latex-ocr.yaml", "--scale", "real", timeout=120)
    assert out.returncode == 1 and "--scale real needs a GPU" in out.stderr
