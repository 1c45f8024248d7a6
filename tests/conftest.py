"""Test setup: fully offline, every cache and home in a temp dir, the tiny model built once."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="internvl-kit-tests-"))
# DeepSpeed's JIT-built CPU op: one build for all pytest-xdist workers of a run (torch's build lock makes
# sharing safe), not one per worker.
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID") or _SESSION_TMP.name
_TORCH_EXT = Path(tempfile.gettempdir()) / f"internvl-kit-torch-ext-{_RUN_ID}"

# Set before anything imports transformers / modelscope / swift, and inherited by every subprocess.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "HF_HOME": str(_SESSION_TMP / "hf"), "MODELSCOPE_CACHE": str(_SESSION_TMP / "ms-cache"),
    "MODELSCOPE_HOME": str(_SESSION_TMP / "ms-home"), "INTERNVL_KIT_HOME": str(_SESSION_TMP / "kit"),
    "TORCH_EXTENSIONS_DIR": str(_TORCH_EXT), "CUDA_VISIBLE_DEVICES": "",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    "MODELSCOPE_UPLOAD_CACHE_ENABLED": "false", "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false",
    # One thread per process: the tiny models gain nothing from more, and with pytest-xdist running two
    # tests at once, oversubscribed OpenMP threads spin (two trainings side by side: 38 s, at 1 thread 20 s).
    "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
}
os.environ.update(OFFLINE_ENV)
for var in ("MODELSCOPE_API_TOKEN", "HF_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)


OWNER_VAR = "INTERNVL_KIT_TEST_OWNER"      # inherited by every process a test starts, and theirs


def _processes_of(owner: str) -> dict[int, str]:
    """Live processes (not zombies) whose environment carries this owner mark: pid -> command line."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if f"{OWNER_VAR}={owner}".encode() not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:              # gone meanwhile, or not ours to read
            continue
    return found


@pytest.fixture(scope="session", autouse=True)
def _no_process_outlives_the_suite():
    """Fails the run if anything a test started (a swift deploy, a training, a watchdog) is still alive once
    every test and fixture of this worker is done; such processes are then killed, not left to pile up."""
    owner = f"{os.getpid()}-{_RUN_ID}"
    os.environ[OWNER_VAR] = owner
    yield
    import signal
    import time
    end = time.monotonic() + 60          # processes being stopped right now get to finish stopping
    while (left := _processes_of(owner)) and time.monotonic() < end:
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    assert not left, "processes started by the tests outlived them (now killed):\n" + "\n".join(
        f"  {pid}: {cmd[:200]}" for pid, cmd in left.items())


@pytest.fixture(autouse=True)
def _isolated_environ():
    """Tests that run the toolkit in-process (apply_settings sets MAX_NUM, ...) must not leak it."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


@dataclass(frozen=True)
class Variant:
    """One tiny model and the tiny-demo overrides that select it: each route, each chat template."""
    name: str
    model: str                    # builtin: ref
    model_type: str
    template: str
    overrides: tuple[str, ...]    # applied to recipes/tiny-demo.yaml (whose own model is internvl3_5)

    @property
    def path(self) -> Path:
        from internvl_kit.models import builtin
        return builtin.resolve(self.model)

    @property
    def is_hf(self) -> bool:
        return self.model_type == "internvl"


VARIANTS = {
    "hf": Variant("hf", "builtin:tiny-internvl-hf", "internvl", "internvl_hf",
                  ("model=builtin:tiny-internvl-hf", "~internvl.input_size")),
    "internvl2_5": Variant("internvl2_5", "builtin:tiny-internvl3", "internvl_chat", "internvl2_5",
                           ("model=builtin:tiny-internvl3",)),
    "internvl3_5": Variant("internvl3_5", "builtin:tiny-internvl3_5", "internvl_chat", "internvl3_5", ()),
}


@pytest.fixture(scope="session", params=list(VARIANTS))
def variant(request) -> Variant:
    """Every end-to-end test runs on each route: the -HF model, and the chat model with both templates."""
    v = VARIANTS[request.param]
    v.path                      # built once per session
    return v


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    """The -HF tiny model (unit tests that need one tokenizer and processor)."""
    return VARIANTS["hf"].path


@pytest.fixture(scope="session")
def demo_model() -> Path:
    """recipes/tiny-demo.yaml's own model (the chat route, InternVL3.5-like)."""
    return VARIANTS["internvl3_5"].path


@pytest.fixture(scope="session")
def demo_data() -> dict[str, Path]:
    from internvl_kit.models import builtin
    return {s: builtin.resolve(f"builtin:demo-shapes:{s}") for s in ("train", "val")}


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600, env: dict | None = None,
            unset: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    """Run one of the entry scripts (train.py, ...) in a subprocess, as a user would."""
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in unset}
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=full)


# Fail fast against a stand-in hub that injects faults: one try per request inside the modelscope client.
FAST_HUB = {"MODELSCOPE_API_MAX_RETRIES": "1", "MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS": "1",
            "MODELSCOPE_DOWNLOAD_MAX_RETRIES": "0", "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false"}


@dataclass
class DatasetHub:
    """The stand-in hub serving the generated LaTeX_OCR, and what a process needs to load from it."""
    hub: object
    cache: Path

    def env(self, cache: Path | None = None) -> dict[str, str]:
        guard = str(ROOT / "tests" / "socket_guard")
        return {"MODELSCOPE_ENDPOINT": self.hub.endpoint, "HF_ENDPOINT": self.hub.endpoint,
                "HF_UPDATE_DOWNLOAD_COUNTS": "0", "HF_HUB_DISABLE_TELEMETRY": "1",
                "MODELSCOPE_CACHE": str(cache or self.cache), "HF_DATASETS_CACHE": str((cache or self.cache) / "hf"),
                "PYTHONPATH": os.pathsep.join(p for p in (guard, os.environ.get("PYTHONPATH")) if p), **FAST_HUB}

    # the HF offline variables stop modelscope's dataset loader: hub-dataset processes run without them
    unset = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")


@pytest.fixture(scope="session")
def dataset_hub(tmp_path_factory):
    from hub_datasets import LATEX_OCR_ID, latex_ocr_files
    from hub_server import StandInHub
    with StandInHub({}) as hub:
        files = latex_ocr_files()
        hub.state.add_dataset(LATEX_OCR_ID, files)
        hub.state.add_dataset("linxy/LaTeX_OCR", files)      # swift's Hugging Face id for it
        yield DatasetHub(hub, tmp_path_factory.mktemp("dataset-cache"))


COLOURS = {"red": (220, 30, 30), "green": (30, 160, 60), "blue": (30, 60, 220), "yellow": (230, 200, 20)}


# Built once per variant and process: pytest tears a parametrized session fixture down when the next
# test wants another variant, and would train again when the first variant comes back.
_BUILT: dict[tuple[str, str], dict] = {}


@pytest.fixture(scope="session")
def overfit_run(variant, tmp_path_factory) -> dict:
    """A LoRA run on four solid-colour images, trained to answer their colour, with non-default tiling
    (internvl.max_num=2) and max_length (256), reporting to TensorBoard, one per variant: shared by the infer,
    export and report tests."""
    if ("overfit", variant.name) in _BUILT:
        return _BUILT["overfit", variant.name]
    import json
    from PIL import Image
    root = tmp_path_factory.mktemp(f"overfit-{variant.name}")
    rows = []
    for i, (name, rgb) in enumerate(COLOURS.items()):
        path = root / f"{name}.png"
        Image.new("RGB", (56, 56), rgb).save(path)
        rows.append({"messages": [{"role": "user", "content": "<image>Colour?"},
                                  {"role": "assistant", "content": name}], "images": [str(path)]})
    data = root / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_cli("train.py", "recipes/tiny-demo.yaml", *variant.overrides, f"dataset=[{data}]", "~val_dataset",
                  "num_train_epochs=60",
                  "save_steps=60", "eval_steps=1000", "logging_steps=10", "internvl.max_num=2", "max_length=256",
                  "report_to=[tensorboard]", f"output_dir={root / 'out'}")
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    (run,) = (root / "out").iterdir()
    assert f"[ok]    report: {run / 'report.html'}" in out.stdout      # written when the training ended
    _BUILT["overfit", variant.name] = {"root": root, "data": data, "run": run, "checkpoint": run / "checkpoint-60",
                                       "variant": variant}
    return _BUILT["overfit", variant.name]


@pytest.fixture(scope="session")
def merged_export(overfit_run, tmp_path_factory) -> dict:
    """The overfit run merged by export.py (both proofs), once per variant: shared by export and card tests."""
    name = overfit_run["variant"].name
    if ("merged", name) not in _BUILT:
        merged = tmp_path_factory.mktemp(f"merged-{name}") / "merged"
        out = run_cli("export.py", str(overfit_run["checkpoint"]), "--merge", "-o", str(merged))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
        _BUILT["merged", name] = {"dir": merged, "stdout": out.stdout}
    return _BUILT["merged", name]



def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test`: -n auto --dist loadgroup) the tests sharing a variant's trained
    run and merged export stay on one worker, so each variant trains once; the rest spread freely."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "variant" in params and {"overfit_run", "merged_export"} & set(item.fixturenames):
            item.add_marker(pytest.mark.xdist_group(f"trained-{params['variant']}"))
