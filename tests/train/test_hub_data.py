"""Hub datasets, end to end against the stand-in hub serving a generated LaTeX_OCR: the headline recipe as
written (only the model swapped for a tiny one) planned, trained, scored on what it held out, exported; the
leak-free sibling; the faults; and the plan's numbers against swift's own loader."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import VARIANTS, run_cli
from hub_datasets import LATEX_OCR_SPLITS

HEADLINE = "recipes/internvl3_5-8b-latex-ocr.yaml"
HELDOUT = "recipes/internvl3_5-8b-latex-ocr-heldout.yaml"
TEST_SPLIT = "AI-ModelScope/LaTeX_OCR@test:human_handwrite"
# What the tiny models need on CPU; everything about the data stays as the recipe writes it.
CPU = ("internvl.max_num=2", "torch_dtype=float32", "fp16=false", "bf16=false", "check_model=false",
       "dataloader_num_workers=0", "report_to=[none]", "gradient_accumulation_steps=1", "max_steps=2",
       "save_steps=2", "eval_steps=2", "logging_steps=1")
ROUTES = {"internvl3_5": ("model=builtin:tiny-internvl3_5", "internvl.input_size=56"),
          "hf": ("model=builtin:tiny-internvl-hf",)}


def _run(hub, *args, cache: Path | None = None, timeout: float = 900, **kw):
    return run_cli(*args, env={**hub.env(cache), **kw.pop("env", {})}, unset=hub.unset, timeout=timeout, **kw)


def _answers(rows_jsonl: Path) -> list[str]:
    return [json.loads(x)["messages"][-1]["content"] for x in rows_jsonl.read_text().splitlines() if x.strip()]


def _swift_val_answers(run: Path) -> list[str]:
    """swift's own record of the rows it evaluated on (val_dataset.jsonl; image bytes blanked by swift)."""
    out = []
    for line in (run / "val_dataset.jsonl").read_text().splitlines():
        messages = [json.loads(m) if isinstance(m, str) else m for m in json.loads(line)["messages"]]
        out.append(messages[-1]["content"])
    return out


@pytest.fixture(scope="module", params=list(ROUTES))
def route(request):
    VARIANTS["hf" if request.param == "hf" else "internvl3_5"].path        # built once
    return request.param


def test_the_headline_recipe_plans_trains_scores_its_held_out_rows_and_exports(dataset_hub, route, tmp_path):
    total = sum(LATEX_OCR_SPLITS["human_handwrite"].values())
    out = _run(dataset_hub, "train.py", HEADLINE, *ROUTES[route], *CPU, f"output_dir={tmp_path}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    # the plan, printed before swift starts, from swift's loading of the served parquet files
    plan_text = out.stdout[:out.stdout.index("# command:")]
    for split, n in LATEX_OCR_SPLITS["human_handwrite"].items():
        assert f"human_handwrite/{split}" in plan_text and f"{n:,} rows" in plan_text
    assert f"{total:,} rows, {total:,} distinct" in plan_text
    assert "test (70 rows) split(s): a later score on them measures training data" in out.stderr
    swift_held_out = _swift_val_answers(run)
    assert len(swift_held_out) == 13 and f"13 rows held out (split_dataset_ratio)" in plan_text
    assert "only 13 row(s) held out for evaluation" in out.stderr
    plan = json.loads((run / "run.json").read_text())["data_plan"]
    assert plan["entries"][0]["rows"] == total and plan["held_out"] == 13
    assert plan["training"] == 20000 - 13 and plan["training_unique"] == total - 13
    assert plan["swift_args"]["dataset"] == ["AI-ModelScope/LaTeX_OCR:human_handwrite#20000"]
    assert "Downloading the dataset from ModelScope" in (run / "swift.log").read_text()   # swift loaded it itself
    # infer.py RUN: exactly the rows swift held out, in swift's order
    scored = _run(dataset_hub, "infer.py", str(run), "--max-new-tokens", "4")
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-3000:]
    ckpt = run / "checkpoint-2"
    assert _answers(ckpt / "infer" / "held-out" / "rows.jsonl") == swift_held_out
    metrics = json.loads((ckpt / "infer" / "held-out.metrics.json").read_text())
    assert metrics["metrics"]["tuned"]["samples"] == 13 and "split_dataset_ratio 0.01" in metrics["dataset"]
    exported = _run(dataset_hub, "export.py", str(ckpt), "--merge", "-o", str(tmp_path / "merged"))
    assert exported.returncode == 0, exported.stdout[-2000:] + exported.stderr[-3000:]
    assert (tmp_path / "merged" / "config.json").is_file()


def test_the_leak_free_recipe_scores_a_test_split_it_never_trained_on(dataset_hub, route, tmp_path):
    out = _run(dataset_hub, "train.py", HELDOUT, *ROUTES[route], *CPU, f"output_dir={tmp_path}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert "measures training data" not in out.stderr and "held out for evaluation" not in out.stderr
    (run,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    plan = json.loads((run / "run.json").read_text())["data_plan"]
    train, val = plan["entries"]
    assert [p["split"] for p in train["parts"]] == ["train"] and train["rows"] == 1200
    assert [p["split"] for p in val["parts"]] == ["validation"] and plan["held_out"] == 68
    assert "eval_loss" in (run / "logging.jsonl").read_text()          # swift evaluated on the validation split
    scored = _run(dataset_hub, "infer.py", str(run), "--dataset", TEST_SPLIT, "--max-new-tokens", "4")
    assert scored.returncode == 0, scored.stdout[-2000:] + scored.stderr[-3000:]
    ckpt = run / "checkpoint-2"
    predictions = [json.loads(x) for x in (ckpt / "infer" / "AI-ModelScope_LaTeX_OCR@test_human_handwrite.jsonl")
                   .read_text().splitlines()]
    assert len(predictions) == 70
    # what swift trained on, rebuilt through swift's loader with the run's recorded arguments (in a fresh
    # process: this one imported `datasets` with the offline variables set)
    code = ("import json, sys; from internvl_kit.train import swift_data;"
            "train, _ = swift_data.load_like_sft(json.loads(sys.argv[1])['data_plan']['swift_args']);"
            "print('ANSWERS', json.dumps(sorted({r['messages'][-1]['content'] for r in train})))")
    rebuilt = _run(dataset_hub, "-c", code, (run / "run.json").read_text())
    assert rebuilt.returncode == 0, rebuilt.stderr[-2000:]
    trained_answers = set(json.loads(rebuilt.stdout.split("ANSWERS ", 1)[1]))
    assert len(trained_answers) == 1200
    assert not trained_answers & {p["messages"][-1]["content"] for p in predictions}


def test_a_hub_failure_on_a_parquet_file_launches_nothing_and_a_retry_works(dataset_hub, tmp_path):
    args = ("train.py", HEADLINE, *ROUTES["internvl3_5"], *CPU, f"output_dir={tmp_path / 'out'}")
    for fault in ("parquet_5xx", "parquet_drop"):
        cache = tmp_path / f"cache-{fault}"                 # nothing cached: the download must happen
        dataset_hub.hub.state.faults[fault] = 1000
        out = _run(dataset_hub, *args, cache=cache)
        dataset_hub.hub.state.faults[fault] = 0
        assert out.returncode == 1, out.stderr[-2000:]
        errors = [x for x in out.stderr.splitlines() if x.startswith("error:")]
        assert len(errors) == 1 and "AI-ModelScope/LaTeX_OCR:human_handwrite#20000" in errors[0], out.stderr[-2000:]
        assert "Traceback" not in out.stderr and "swift sft" not in out.stdout
        assert not (tmp_path / "out").exists()                                  # nothing launched
        again = _run(dataset_hub, *args, "--plan", cache=cache)
        assert again.returncode == 0 and "1,338 rows, 1,338 distinct" in again.stdout, again.stderr[-2000:]


def test_no_hub_and_no_cache_is_one_line_and_exit_1(dataset_hub, tmp_path):
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]                 # nothing listens here once closed
    out = run_cli("train.py", HEADLINE, *ROUTES["internvl3_5"], *CPU, f"output_dir={tmp_path / 'out'}",
                  env={**dataset_hub.env(tmp_path / "cache"), "MODELSCOPE_ENDPOINT": f"http://127.0.0.1:{port}"},
                  unset=dataset_hub.unset, timeout=600)
    assert out.returncode == 1
    (error,) = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert "cannot load it from the ModelScope hub" in error and "not in the local cache" in error
    assert "Traceback" not in out.stderr and not (tmp_path / "out").exists()


def test_the_hf_offline_variables_are_named_in_one_line(dataset_hub, tmp_path):
    out = run_cli("train.py", HEADLINE, *ROUTES["internvl3_5"], *CPU, f"output_dir={tmp_path}",
                  env={**dataset_hub.env(), "HF_DATASETS_OFFLINE": "1"}, timeout=300)
    assert out.returncode == 1
    (error,) = [x for x in out.stderr.splitlines() if x.startswith("error:")]
    assert "HF_HUB_OFFLINE/TRANSFORMERS_OFFLINE/HF_DATASETS_OFFLINE is set" in error and "unset" in error


def test_skip_preflight_says_the_hub_dataset_was_not_checked(tmp_path):
    out = run_cli("train.py", HEADLINE, "--dry-run", "--skip-preflight", f"output_dir={tmp_path}")
    assert out.returncode == 0
    assert ("--skip-preflight: dataset(s) AI-ModelScope/LaTeX_OCR:human_handwrite#20000 not loaded or checked"
            in out.stderr)
    plain = run_cli("train.py", HEADLINE, "--dry-run", f"output_dir={tmp_path}")
    assert plain.returncode == 0 and "# data plan: made at launch, or now with --plan" in plain.stdout


def test_the_hugging_face_route_plans_the_same_rows(dataset_hub, tmp_path):
    """use_hf: swift loads through `datasets` from HF_ENDPOINT (the stand-in's Hugging Face side)."""
    out = _run(dataset_hub, "train.py", HEADLINE, *ROUTES["internvl3_5"], *CPU, "use_hf=true", "--plan",
               f"output_dir={tmp_path}", cache=tmp_path / "cache")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "[Hugging Face]" in out.stdout and "1,338 rows, 1,338 distinct" in out.stdout
    assert "13 rows held out" in out.stdout
    views = _run(dataset_hub, "train.py", HELDOUT, *ROUTES["internvl3_5"], *CPU, "use_hf=true", "--plan",
                 f"output_dir={tmp_path}", cache=tmp_path / "cache")
    assert views.returncode == 0, views.stderr[-3000:]
    assert "human_handwrite/train                1,200 rows" in views.stdout and "68 rows held out" in views.stdout
    served = [line for line in dataset_hub.hub.state.log if line.startswith(("GET /datasets/", "HEAD /datasets/"))]
    assert any("linxy/LaTeX_OCR/resolve/" in line and "test-00000" not in line for line in served)
