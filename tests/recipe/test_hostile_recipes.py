"""Hostile or unlucky recipes and flags: each fails with a clear message (file, and line where the YAML
has one), a non-zero exit, no traceback, in under 2 s and bounded memory (the child runs under a 1 GiB
address-space limit beyond what the interpreter already maps)."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

DEMO = "recipes/tiny-demo.yaml"
LIMIT_S = 2.0


def _train(*args: str, cwd: Path = ROOT, env: dict | None = None) -> tuple[subprocess.CompletedProcess, float]:
    def cap_memory() -> None:       # an alias bomb or a 20 MB parse would blow through this, not the machine
        resource.setrlimit(resource.RLIMIT_AS, (2 * 1024 ** 3, 2 * 1024 ** 3))
    # CPU seconds (user + sys) of the child, not wall time: the limit is about the work a hostile recipe
    # can cause, and must not fail when pytest-xdist keeps every core busy.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run([sys.executable, str(ROOT / "train.py"), *args], cwd=cwd, capture_output=True, text=True,
                         timeout=60, env={**os.environ, **(env or {})}, preexec_fn=cap_memory)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return out, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _recipe(tmp: Path, text: str, name: str = "r.yaml") -> str:
    (tmp / "data.jsonl").write_text("{}\n")
    path = tmp / name
    path.write_text(text)
    return str(path)


BASE = "model: OpenGVLab/InternVL3_5-8B\ndataset: [data.jsonl]\n"
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
             "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n" \
             "e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]\nf: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]\n" \
             "dataset: [*f, *f, *f, *f, *f, *f, *f, *f, *f]\n"

# name -> (recipe text or None for the demo, extra args, env, what the message must say, the line it names)
CASES = {
    "non-string key on:": (BASE + "on: true\n", [], {}, "key 'on' is not a string (YAML 1.1 reads on/off/yes/no as "
                                                       "booleans); quote it", 3),
    "int key": (BASE + "123: x\n", [], {}, "key '123' is not a string", 3),
    "alias bomb": (ALIAS_BOMB, [], {}, "anchors and aliases (&name, *name) are not allowed", 1),
    "3000-deep nesting": (BASE + "system: " + "[" * 3000 + "]" * 3000 + "\n", [], {}, "nested", None),
    "duplicate key": (BASE + "lora_rank: 8\nlora_rank: 16\n", [], {}, "lora_rank: duplicate key (also on line 3)",
                      4),
    "flag smuggled in a list": (BASE, ["dataset=[data.jsonl,--neftune_noise_alpha,5]"], {},
                                "list item '--neftune_noise_alpha' starts with '-': swift would read it as a flag",
                                None),
    "nested list": (BASE, ["dataset=[[a,b]]"], {}, "dataset.0: expected string", None),
    "NaN learning rate": (BASE, ["learning_rate=.nan"], {}, "learning_rate: nan is not a finite number", None),
    "inf learning rate": (BASE + "learning_rate: .inf\n", [], {}, "learning_rate: inf is not a finite number", 3),
    "deepspeed zero9": (BASE + "deepspeed: zero9\n", [], {}, "'zero9' is neither a DeepSpeed preset (zero0, zero1, zero2, zero2_offload, zero3, zero3_offload) nor an "
                        "existing .json config file; did you mean 'zero3'?",
                        3),
    "deepspeed file of broken JSON": ("<ds>{\"zero_optimization\": {\"stage\": 2\n", [], {},
                                      "ds.json:2:1: not valid JSON", 3),
    "deepspeed file holding a list": ("<ds>[1, 2]\n", [], {}, "ds.json: holds a JSON list, but a DeepSpeed config "
                                                              "is a JSON object", 3),
    "truncation raise (swift refuses it)": (BASE + "truncation_strategy: raise\n", [], {},
                                            "truncation_strategy: 'raise' is not allowed", 3),
    "typo": (BASE + "lora_dtpye: bfloat16\n", [], {}, "lora_dtpye: unknown key; did you mean 'lora_dtype'?", 3),
    "unknown key": (BASE + "zzz_frobnicate: 1\n", [], {}, "zzz_frobnicate: unknown key (list the allowed ones with: "
                                                          "python train.py --keys PATTERN)", 3),
    "gpus -4": (None, ["--estimate", "--gpus", "-4"], {}, "--gpus: must be a positive integer, got -4", None),
    "gpu memory nan": (None, ["--estimate", "--gpu-memory", "nan"], {}, "must be a positive number of GiB, got nan",
                       None),
    "node rank 5 of 2": (None, ["nnodes=2", "--node-rank", "5", "--master-addr", "10.0.0.1", "--dry-run"], {},
                         "--node-rank 5 does not exist with nnodes=2", None),
    "port 99999": (None, ["--master-port", "99999", "--dry-run"], {}, "must be a TCP port (1-65535), got 99999", None),
    "node rank 1 without master": (None, ["nnodes=2", "--node-rank", "1", "--dry-run"], {},
                                   "--node-rank 1 needs --master-addr", None),
    "4 processes on 1 visible GPU": (None, ["nproc_per_node=4", "--dry-run"], {"CUDA_VISIBLE_DEVICES": "0"},
                                     "nproc_per_node=4 but 1 GPU(s) are visible", None),
    "output_dir in /sys": (None, ["output_dir=/sys/kernel/x", "--dry-run"], {},
                           "cannot create the run directory under /sys/kernel", None),
    "a directory as recipe": ("<dir>", [], {}, "is a directory, not a recipe file", None),
    "binary garbage": ("<binary>", [], {}, "cannot read", None),
    "swift flag without value": (None, ["--lora_rank", "--dry-run"], {}, "--lora_rank needs a value: write "
                                                                         "lora_rank=VALUE", None),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_hostile_input_fails_cleanly_and_fast(case, tmp_path):
    text, extra, env, message, line = CASES[case]
    if text is None:
        recipe = DEMO
    elif text == "<dir>":
        (tmp_path / "d.yaml").mkdir()
        recipe = str(tmp_path / "d.yaml")
    elif text == "<binary>":
        recipe = str(tmp_path / "b.yaml")
        Path(recipe).write_bytes(bytes(range(256)) * 16)
    elif text.startswith("<ds>"):
        (tmp_path / "ds.json").write_text(text[4:])
        recipe = _recipe(tmp_path, BASE + "deepspeed: ds.json\n")
    else:
        recipe = _recipe(tmp_path, text)
    out, seconds = _train(recipe, *extra, cwd=tmp_path if text not in (None,) else ROOT, env=env)
    assert out.returncode != 0, out.stdout[-1000:] + out.stderr[-1000:]
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    assert message in out.stderr, out.stderr[-2000:]
    if line is not None:
        assert f"{recipe}:{line}:" in out.stderr, out.stderr
    assert seconds < LIMIT_S, f"{seconds:.1f} s"


def test_key_problems_do_not_hide_the_rest_of_the_recipe(tmp_path):
    """A non-string key (`on: true`) or a duplicate is reported with every other problem, in one run."""
    recipe = _recipe(tmp_path, BASE + "on: true\nlora_rnk: 8\nlora_rank: 8\nlora_rank: 9\nlearning_rate: .nan\n")
    out, _ = _train(recipe, "--dry-run", cwd=tmp_path)
    assert out.returncode == 1 and "recipe has 4 problems" in out.stderr, out.stderr
    for line, text in ((3, "key 'on' is not a string"), (4, "lora_rnk: unknown key"), (6, "duplicate key"),
                       (7, "nan is not a finite number")):
        assert f"{recipe}:{line}: " in out.stderr and text in out.stderr, out.stderr


def test_a_20_mb_recipe_is_refused_without_parsing_it(tmp_path):
    recipe = tmp_path / "big.yaml"
    recipe.write_text(BASE + "description: |\n" + ("  " + "x" * 99 + "\n") * 200_000)
    out, seconds = _train(str(recipe))
    assert out.returncode == 1 and "a recipe is at most 1,048,576" in out.stderr and seconds < LIMIT_S


def test_a_1000_long_extends_chain_is_refused(tmp_path):
    (tmp_path / "data.jsonl").write_text("{}\n")
    (tmp_path / "r0.yaml").write_text(BASE)
    for i in range(1, 1000):
        (tmp_path / f"r{i}.yaml").write_text(f"extends: r{i - 1}.yaml\n")
    out, seconds = _train(str(tmp_path / "r999.yaml"), cwd=tmp_path)
    assert out.returncode == 1 and "more than 32 levels of extends" in out.stderr
    assert "Traceback" not in out.stderr and seconds < LIMIT_S


def test_list_survives_a_broken_recipe_and_a_closed_pipe(tmp_path, monkeypatch):
    from internvl_kit.recipe import catalogue
    (tmp_path / "good.yaml").write_text(BASE.replace("data.jsonl", "d.jsonl"))
    (tmp_path / "broken.yaml").write_text("model: [\n")
    monkeypatch.setattr(catalogue, "RECIPES_DIR", tmp_path)
    text = catalogue.text()
    assert "broken.yaml" in text and "BROKEN" in text and "invalid YAML" in text and "OpenGVLab/InternVL3_5-8B" in text
    out = subprocess.run(["bash", "-c", f"{sys.executable} train.py --list | head -1"], cwd=ROOT,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "Traceback" not in out.stderr and "BrokenPipe" not in out.stderr


def test_a_value_starting_with_a_dash_stays_one_argv_item():
    from internvl_kit.recipe import load_recipe
    from internvl_kit.train.swift_cmd import train_command
    r = load_recipe(ROOT / DEMO, ["system=--neftune_noise_alpha 5"])
    cmd = train_command(r, r.data, Path("/tmp/run"))
    assert "--system=--neftune_noise_alpha 5" in cmd.args and "--neftune_noise_alpha" not in cmd.args


def _special_paths(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    loop = tmp_path / "loop.yaml"
    loop.symlink_to(loop)
    nul = tmp_path / "nul.yaml"
    nul.write_bytes(b"description: fine\nmodel: a\x00b\n")
    environ = tmp_path / "environ.yaml"
    environ.write_text("extends: /proc/self/environ\n")
    return {"/dev/zero": (Path("/dev/zero"), "not a regular file (a device, FIFO or socket)"),
            "fifo": (fifo, "not a regular file (a device, FIFO or socket)"),
            "symlink loop": (loop, "cannot read: Symlink loop"),
            "NUL": (nul, f"{nul}:2: invalid YAML: character '\\x00' is not allowed in YAML; fix: remove it"),
            "extends /proc/self/environ": (environ, "invalid YAML: character '\\x00' is not allowed")}


@pytest.mark.parametrize("case", ["/dev/zero", "fifo", "symlink loop", "NUL", "extends /proc/self/environ"])
def test_special_files_as_recipes_fail_at_once_with_the_reason(case, tmp_path):
    path, message = _special_paths(tmp_path)[case]
    out, cpu = _train(str(path), "--dry-run")
    assert out.returncode == 1 and message in out.stderr, out.stderr[-2000:]
    assert "Traceback" not in out.stderr and cpu < LIMIT_S
