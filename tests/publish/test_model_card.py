"""The model card's loading snippets run as printed, on every route, against the exported tiny models.

The adapter and the merged export of the overfit run are pushed to the stand-in hub, next to the
base model under its public id; the card's transformers snippet (fetching from that hub through
modelscope) and its swift command are then executed and must answer, with the trained tiling.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import run_cli
from hub_server import PUBLIC, Repo, StandInHub

pytestmark = pytest.mark.e2e
TOKEN = "card-token"


def _section(card: str, heading: str, lang: str) -> str:
    m = re.search(rf"### {heading}\n\n(?:[^\n]*\n\n)?```{lang}\n(.*?)```", card, re.S)
    assert m, f"no {lang} block under ### {heading}"
    return m.group(1)


def _publish_base(hub: StandInHub, variant) -> None:
    """The base model on the hub under the public id the card names (as OpenGVLab/... would be)."""
    from internvl_kit.models import builtin
    files = {p.relative_to(variant.path).as_posix(): p.read_bytes() for p in variant.path.rglob("*") if p.is_file()}
    hub.state.repos[builtin.tiny(variant.model).public_id] = Repo(PUBLIC, files=files)


@pytest.mark.parametrize("kind", ["adapter", "merged"])
def test_card_snippets_run_as_printed_and_answer(kind, overfit_run, merged_export, tmp_path):
    variant = overfit_run["variant"]
    red = overfit_run["root"] / "red.png"
    repo = f"alice/card-{variant.name}-{kind}"
    with StandInHub({TOKEN: "alice"}) as hub:
        _publish_base(hub, variant)
        source = merged_export["dir"] if kind == "merged" else str(overfit_run["checkpoint"])
        args = [str(source)] if kind == "merged" else [str(source), "-o", str(tmp_path / "adapter")]
        env = {"MODELSCOPE_ENDPOINT": hub.endpoint, "MODELSCOPE_CACHE": str(tmp_path / "ms-cache"),
               "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false"}
        out = run_cli("export.py", *args, "--push", repo, env={**env, "MODELSCOPE_API_TOKEN": TOKEN})
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
        export_dir = Path(source) if kind == "merged" else tmp_path / "adapter"
        card = (export_dir / "README.md").read_text()
        assert card == hub.state.repos[repo].files["README.md"].decode()

        code = _section(card, "transformers", "python")
        assert f'MODEL = "{repo}"' in code
        code = code.replace('IMAGE = "image.png"', f'IMAGE = "{red}"').replace(
            'QUESTION = "Describe the image."', 'QUESTION = "Colour?"')
        snippet = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                                 timeout=300, env={**os.environ, **env})
        assert snippet.returncode == 0, snippet.stderr[-3000:]
        answer = snippet.stdout.strip().splitlines()[-1] if snippet.stdout.strip() else ""
        assert answer == "red", snippet.stdout + snippet.stderr[-2000:]         # the tuned answer, not the base's

        command = _section(card, "swift", "bash").strip()
        assert repo in command and "\n" not in command
        if not variant.is_hf:
            assert command.startswith("INPUT_SIZE=56 MAX_NUM=2 swift infer")
        bin_dir = str(Path(sys.executable).parent)
        swift = subprocess.run(["bash", "-c", command], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                               input=f"<image>Colour?\n{red}\nexit\n",
                               env={**os.environ, **env, "PATH": bin_dir + os.pathsep + os.environ["PATH"]})
        log = swift.stdout + swift.stderr
        assert swift.returncode == 0, log[-3000:]
        assert "Please set --model" not in log
        assert "Input an image path or URL <<< red\n" in swift.stdout, log[-3000:]      # swift's answer
        if not variant.is_hf:            # swift's own template reports the tiling it applies
            assert "Setting max_num: 2" in log and "Setting input_size: 56" in log
