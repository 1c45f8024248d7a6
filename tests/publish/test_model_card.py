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
from internvl_kit.train.supervise import aborted_at_exit

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
        assert ("model.system_message = " in code) != variant.is_hf      # the system prompt of training
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
        # swift infer generates on a daemon thread, and Python 3.11 can abort the process while it exits, after
        # the answer (pytorch#38228; aborted_at_exit): only that is excused, the answer is still required
        assert swift.returncode == 0 or aborted_at_exit(swift.returncode, swift.stderr.splitlines()), log[-3000:]
        assert "Please set --model" not in log
        assert "Input an image path or URL <<< red\n" in swift.stdout, log[-3000:]      # swift's answer
        if not variant.is_hf:            # swift's own template reports the tiling it applies
            assert "Setting max_num: 2" in log and "Setting input_size: 56" in log


@pytest.mark.parametrize("tag", ["<image>", "<image>\n"], ids=["glued", "newline"])
@pytest.mark.parametrize("name", ["internvl3_5", "internvl2_5"])
def test_the_cards_chat_prompt_is_the_prompt_of_training(name, tag, tmp_path):
    """The tiny remote code builds chat() prompts as the official code does (its config's template, internvl2_5,
    with that template's default system message); with the card's `model.system_message` line the prompt is
    token for token the one swift's template builds in training and in infer.py."""
    from types import SimpleNamespace
    from conftest import VARIANTS
    from internvl_kit.models.remote_code.modeling_internvl_chat import SYSTEM_MESSAGES, InternVLChatModel
    from internvl_kit.publish.model_card import _chat_question, training_system
    variant = VARIANTS[name]
    code = f"""
import re, sys
from PIL import Image
from swift import get_processor, get_template
proc = get_processor({str(variant.path)!r}, model_type='internvl_chat', download_model=False)
tpl = get_template(proc, template_type={variant.template!r})
enc = tpl.encode({{'messages': [{{'role': 'user', 'content': {tag + "Colour?"!r}}}], 'images': [Image.new('RGB', (56, 56))]}})
print(repr(re.sub(r'(<IMG_CONTEXT>)+', '<IMG_CONTEXT>', proc.decode(enc['input_ids']))))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "INPUT_SIZE": "56"})
    assert out.returncode == 0, out.stderr[-2000:]
    swift_prompt = eval(out.stdout.strip().splitlines()[-1])
    system = training_system(SimpleNamespace(recipe={}, template=variant.template))
    default = InternVLChatModel._prompt(SimpleNamespace(system_message=SYSTEM_MESSAGES["internvl2_5"]), [],
                                        "<image>\nColour?")          # what chat() builds without the card's line
    scope = {"QUESTION": "Colour?"}
    exec(_chat_question(SimpleNamespace(image_tag=tag)), scope)      # the card's `question = ...` line
    carded = InternVLChatModel._prompt(SimpleNamespace(system_message=system), [], scope["question"])
    image = "<img><IMG_CONTEXT></img>"
    assert carded.replace("<image>", image) == swift_prompt
    if tag == "<image>":                  # the gap the system_message line closes
        assert (default.replace("<image>", image) == swift_prompt) == (name == "internvl2_5")


def test_the_card_says_how_long_it_trained():
    """max_steps, when set, is what bounded the run (it overrides num_train_epochs in swift)."""
    from internvl_kit.publish.model_card import _length
    assert _length({"max_steps": 40, "num_train_epochs": 3}) == "40 steps (max_steps)"
    assert _length({"max_steps": -1, "num_train_epochs": 3}) == "3 epochs"


def test_proof_lines_state_small_ratios_readably():
    """A worst element far inside the tolerance reads as such, not as "0.00x"."""
    from internvl_kit.publish.cli import _describe_proof
    line = _describe_proof({"proof": "weights", "lora_targets": 14, "worst_vs_tolerance": 0.00041, "replaced": 14,
                            "unchanged": 3})
    assert "worst element at 0.00041 of the dtype tolerance" in line


def test_the_card_names_the_objective_its_mix_beta_and_reference(tmp_path):
    """SFT, DPO and InternVL's MPO mix are told apart on the card, with the reference a preference run
    measured itself against (the SFT adapter of a chained run, by name: no local path on a card)."""
    from internvl_kit.infer.checkpoint import CheckpointInfo
    from internvl_kit.publish.model_card import _objective

    def info(recipe: dict, record: dict | None = None) -> CheckpointInfo:
        return CheckpointInfo(path=tmp_path, kind="adapter", base_model="m", model_type="internvl_chat",
                              template="internvl3_5", max_length=512, recipe=recipe, record=record)
    assert _objective(info({})) == "supervised fine-tuning (swift sft)"
    assert _objective(info({"rlhf_type": "dpo"})) == (
        "DPO through swift rlhf (rlhf_type dpo): loss sigmoid, beta 0.1 (swift default); reference: the base "
        "model (the policy with its adapter off)")
    sft = str(tmp_path / "sft-run" / "checkpoint-60")
    chained = {"ref_adapters": [{"checkpoint": sft, "run_dir": str(tmp_path / "sft-run"), "recipe_name": "tiny-demo"}]}
    mpo = _objective(info({"rlhf_type": "dpo", "loss_type": ["sigmoid", "bco_pair", "sft"],
                           "loss_weights": [0.8, 0.2, 1.0], "beta": 0.1, "ref_adapters": [sft]},
                          {"chained_from": chained}))
    assert mpo == ("MPO (Mixed Preference Optimization) through swift rlhf (rlhf_type dpo): loss 0.8 x sigmoid + "
                   "0.2 x bco_pair + 1.0 x sft, beta 0.1; reference: the adapter checkpoint-60 of run tiny-demo")
    assert str(tmp_path) not in mpo
