"""Test setup: fully offline, every cache and home in a temp dir, the tiny model built once."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SESSION_TMP = Path(tempfile.mkdtemp(prefix="internvl-kit-tests-"))

# Set before anything imports transformers / modelscope / swift, and inherited by every subprocess.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
    "HF_HOME": str(_SESSION_TMP / "hf"), "MODELSCOPE_CACHE": str(_SESSION_TMP / "ms-cache"),
    "MODELSCOPE_HOME": str(_SESSION_TMP / "ms-home"), "INTERNVL_KIT_HOME": str(_SESSION_TMP / "kit"),
    "TORCH_EXTENSIONS_DIR": str(_SESSION_TMP / "torch-ext"), "CUDA_VISIBLE_DEVICES": "",
    "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
    "MODELSCOPE_UPLOAD_CACHE_ENABLED": "false", "WANDB_DISABLED": "true", "TOKENIZERS_PARALLELISM": "false",
}
os.environ.update(OFFLINE_ENV)
for var in ("MODELSCOPE_API_TOKEN", "HF_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(var, None)


@pytest.fixture(scope="session")
def tiny_model() -> Path:
    from internvl_kit import builtin
    return builtin.resolve("builtin:tiny-internvl")


@pytest.fixture(scope="session")
def demo_data() -> dict[str, Path]:
    from internvl_kit import builtin
    return {s: builtin.resolve(f"builtin:demo-shapes:{s}") for s in ("train", "val")}


def run_cli(*args: str, cwd: Path = ROOT, timeout: float = 600, env: dict | None = None
            ) -> subprocess.CompletedProcess:
    """Run one of the entry scripts (train.py, ...) in a subprocess, as a user would."""
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})
