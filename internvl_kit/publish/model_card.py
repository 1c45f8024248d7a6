"""The model card (README.md) of an export: what was trained, on what, how well, and how to load it.

Its loading snippets follow the route: chat checkpoints (internvl_chat) load with AutoModel and
trust_remote_code and answer through `model.chat`, with InternVL's tiling written out; -HF
checkpoints load with AutoModelForImageTextToText and their processor. Both fetch from ModelScope
(or a local copy) and re-apply the tiling the model was trained with. tests/publish/test_model_card.py runs
the transformers and swift snippets of every route against the exported tiny models.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ..infer.checkpoint import CheckpointInfo
from .export_dir import base_model_id, scrub

DEFAULT_MAX_NUM, DEFAULT_INPUT_SIZE = 12, 448       # swift's defaults for MAX_NUM / INPUT_SIZE
# The default system prompt of swift's ChatML InternVL templates (facts: ms-swift 4.6 template registry).
# The official remote code's chat() uses the one of the template config.json names (internvl2_5 in the
# InternVL3.5 releases), so the card sets the one the model was trained with.
SWIFT_DEFAULT_SYSTEM = {
    "internvl2_5": "你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位联合开发的多模态大语言模型。",
    "internvl3_5": "",
}


def training_system(info: CheckpointInfo) -> str | None:
    """The system prompt the model saw in training (the recipe's `system`, else the template's default);
    None for templates whose prompt chat() cannot build (internvl3_5_gpt is not ChatML)."""
    system = (info.recipe or {}).get("system")
    if info.template not in SWIFT_DEFAULT_SYSTEM:
        return None
    return system if isinstance(system, str) else SWIFT_DEFAULT_SYSTEM[info.template]

# InternVL's dynamic tiling, as swift's internvl templates and the official model cards do it.
_TILING = '''

def load_tiles(path, size, max_num):
    """InternVL tiling: the grid of size x size tiles (at most max_num) closest to the image's
    aspect ratio, plus a thumbnail when there is more than one tile."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    grids = sorted({(i, j) for n in range(1, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                    if i * j <= max_num}, key=lambda g: g[0] * g[1])
    best, best_diff = (1, 1), float("inf")
    for cols, rows in grids:
        diff = abs(w / h - cols / rows)
        if diff < best_diff or (diff == best_diff and w * h > 0.5 * size * size * cols * rows):
            best, best_diff = (cols, rows), diff
    cols, rows = best
    grid = image.resize((size * cols, size * rows))
    tiles = [grid.crop((c * size, r * size, (c + 1) * size, (r + 1) * size)) for r in range(rows) for c in range(cols)]
    if len(tiles) > 1:
        tiles.append(image.resize((size, size)))
    norm = T.Compose([T.Resize((size, size), interpolation=T.InterpolationMode.BICUBIC), T.ToTensor(),
                      T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    return torch.stack([norm(t) for t in tiles])

'''


def _head(load_id: str, imports: str, helpers: str = "") -> str:
    """Imports, the three values a user edits, helpers, then where the weights are."""
    return f'''import os

import torch
{imports}from modelscope import snapshot_download

MODEL = "{load_id}"   # ModelScope id, or a local copy of this repository
IMAGE = "image.png"
QUESTION = "Describe the image."
{helpers}
path = MODEL if os.path.isdir(MODEL) else snapshot_download(MODEL)
device = "cuda" if torch.cuda.is_available() else "cpu"
'''


def _chat_question(info: CheckpointInfo) -> str:
    """chat() puts no newline after the image; swift's template puts one: the question as training saw it."""
    if info.image_tag == "<image>\n":
        return ('question = "<image>\\n\\n" + QUESTION   # trained on "<image>\\n" rows, after which swift adds '
                'its own newline\n')
    return 'question = "<image>\\n" + QUESTION   # swift put one newline after the image in training\n'


def transformers_snippet(info: CheckpointInfo, merged: bool, load_id: str) -> str:
    """Python that loads this export with transformers (+ peft for adapters) and answers one question."""
    dtype = (info.recipe or {}).get("torch_dtype") or "bfloat16"
    base = base_model_id(info)
    max_num = info.knobs.get("max_num", DEFAULT_MAX_NUM)
    if info.model_type == "internvl_chat":
        code = _head(load_id, "import torchvision.transforms as T\nfrom PIL import Image\n"
                              "from transformers import AutoModel, AutoTokenizer\n", _TILING)
        weights = "path"
        if not merged:
            code += (f'base = "{base}"\nbase_path = base if os.path.isdir(base) else snapshot_download(base)\n')
            weights = "base_path"
        code += (f"model = AutoModel.from_pretrained({weights}, dtype=torch.{dtype}, trust_remote_code=True)"
                 f".eval().to(device)\n")
        if not merged:
            code += "model.load_adapter(path)      # the LoRA, applied in place by transformers' PEFT integration\n"
        system = training_system(info)
        if system is not None:
            code += (f"model.system_message = {system!r}   # the system prompt of training ({info.template}"
                     f"{'' if system else ': none'}), not the remote code's default\n")
        code += (f"tokenizer = AutoTokenizer.from_pretrained({weights}, trust_remote_code=True)\n"
                 f"# the tiling this model was trained with: {info.knobs.get('input_size', DEFAULT_INPUT_SIZE)}-px "
                 f"tiles, at most {max_num} per image\n"
                 f"pixel_values = load_tiles(IMAGE, {info.knobs.get('input_size', DEFAULT_INPUT_SIZE)}, {max_num})"
                 f".to(device, model.dtype)\n"
                 f"{_chat_question(info)}"
                 f'print(model.chat(tokenizer, pixel_values, question, dict(max_new_tokens=256, do_sample=False)))\n')
        return code
    code = _head(load_id, "from PIL import Image\nfrom transformers import AutoModelForImageTextToText, "
                          "AutoProcessor\n")
    weights = "path"
    if not merged:
        code += f'base = "{base}"\nbase_path = base if os.path.isdir(base) else snapshot_download(base)\n'
        weights = "base_path"
    code += f"model = AutoModelForImageTextToText.from_pretrained({weights}, dtype=torch.{dtype}).eval().to(device)\n"
    if merged:
        code += "processor = AutoProcessor.from_pretrained(path)   # carries the trained tile limit (max_patches)\n"
    else:
        code += ("model.load_adapter(path)      # the LoRA, applied in place by transformers' PEFT integration\n"
                 f"processor = AutoProcessor.from_pretrained(base_path)\n"
                 f"processor.image_processor.max_patches = {max_num}   # the tile limit this model was trained with\n")
    code += ('messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION}]}]\n'
             "text = processor.apply_chat_template(messages, add_generation_prompt=True)\n"
             'inputs = processor(images=[Image.open(IMAGE).convert("RGB")], text=[text], return_tensors="pt")'
             ".to(device)\n"
             'inputs["pixel_values"] = inputs["pixel_values"].to(model.dtype)\n'
             "out = model.generate(**inputs, max_new_tokens=256, do_sample=False)\n"
             'print(processor.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True))\n')
    return code


def swift_command(info: CheckpointInfo, merged: bool, load_id: str) -> str:
    """The `swift infer` command line for this export, with the tiling env swift's templates read."""
    env = " ".join(f"{k}={v}" for k, v in sorted(info.env.items()) if info.model_type == "internvl_chat")
    if merged:
        cmd = (f"swift infer --model {load_id} --model_type {info.model_type} --template {info.template} "
               f"--max_length {info.max_length}")
    else:   # the published args.json names the base model, model_type and template
        cmd = f"swift infer --adapters {load_id} --max_length {info.max_length}"
    return f"{env} {cmd}".strip()


def _swift_note(info: CheckpointInfo, merged: bool) -> str:
    if info.model_type == "internvl_chat":
        return "swift reads the tiling from the environment variables in front of the command."
    if merged:
        return "swift's internvl_hf template tiles with the processor's max_patches, which this export carries."
    return ("swift's internvl_hf template tiles with the base processor's max_patches "
            f"({DEFAULT_MAX_NUM}), not the trained {info.knobs.get('max_num', DEFAULT_MAX_NUM)}: for the trained "
            f"tiling use the transformers snippet, the merged model, or internvl-kit's infer.py.")


def _cell(value: Any) -> str:
    """Text for a markdown table cell: a `|` (regexes of LoRA targets) would split the cell."""
    return str(value).replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _dataset_lines(recipe: dict[str, Any]) -> list[str]:
    from ..train.preflight import local_dataset_path
    out = []
    for key in ("dataset", "val_dataset"):
        for entry in recipe.get(key) or []:
            local = local_dataset_path(entry) if not entry.startswith("builtin:") else None
            size = ""
            if local is not None and local.is_file():
                with open(local, "rb") as f:
                    size = f" ({sum(1 for line in f if line.strip())} samples)"
            out.append(f"- {key}: `{scrub(entry)}`{size}")
    return out


def _length(recipe: dict[str, Any]) -> str:
    """How long it trained: swift's max_steps (when > 0) overrides num_train_epochs."""
    steps = recipe.get("max_steps")
    if isinstance(steps, int) and steps > 0:
        return f"{steps} steps (max_steps)"
    return f"{recipe.get('num_train_epochs')} epochs"


def _objective(info: CheckpointInfo) -> str:
    """What the run optimised: SFT, or the preference objective with its beta, loss mix and reference."""
    recipe = info.recipe or {}
    kind = recipe.get("rlhf_type")
    if kind is None:
        return "supervised fine-tuning (swift sft)"
    losses = recipe.get("loss_type") or ["sigmoid"]
    losses = [losses] if isinstance(losses, str) else list(losses)
    weights = recipe.get("loss_weights")
    mpo = kind == "dpo" and {"bco_pair", "sft"} <= set(losses)
    name = "MPO (Mixed Preference Optimization)" if mpo else kind.upper()
    mix = " + ".join(f"{w} x {loss}" for loss, w in zip(losses, weights)) if weights else " + ".join(losses)
    beta = recipe.get("beta")
    links = ((info.record or {}).get("chained_from") or {}).get("ref_adapters") or []
    if links:
        ref = ", ".join(f"the adapter {Path(x['checkpoint']).name}" + (f" of run {x['recipe_name']}" if x.get(
            "recipe_name") else "") for x in links)
    elif recipe.get("ref_adapters"):
        ref = ", ".join(f"the adapter {Path(str(x)).name}" for x in recipe["ref_adapters"])
    elif recipe.get("ref_model"):          # a hub id as it is; a local directory by its name only
        ref = f"`{Path(recipe['ref_model']).name if Path(recipe['ref_model']).exists() else recipe['ref_model']}`"
    else:
        ref = "the base model (the policy with its adapter off)"
    rpo = f", rpo_alpha {recipe['rpo_alpha']}" if recipe.get("rpo_alpha") is not None else ""
    return (f"{name} through swift rlhf (rlhf_type {kind}): loss {mix}, beta "
            f"{beta if beta is not None else '0.1 (swift default)'}{rpo}; reference: {ref}")


def _metrics_lines(info: CheckpointInfo) -> list[str]:
    import json
    lines = []
    for path in sorted((info.path / "infer").glob("*.metrics.json")):
        try:
            report = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            continue
        for name, m in report.get("metrics", {}).items():
            if m.get("samples"):
                chrf = f"{m['chrf']:.1f}" if m.get("chrf") is not None else "-"
                bleu = f"{m['bleu']:.1f}" if m.get("bleu") is not None else "-"
                lines.append(f"| {_cell(Path(report.get('dataset', path.stem)).name)} | {name} | {m['samples']} | "
                             f"{m['exact_match']:.3f} | {m['normalized_exact_match']:.3f} | {m['cer']:.3f} | "
                             f"{chrf} | {bleu} |")
    if not lines:
        return ["No evaluation was run (`python infer.py CHECKPOINT --dataset val.jsonl` adds it here)."]
    return ["| dataset | model | samples | exact match | normalized EM | CER | chrF | BLEU |",
            "| --- | --- | --- | --- | --- | --- | --- | --- |"] + lines + [
        "", "Exact match suits short closed answers, normalized EM LaTeX (spacing ignored), CER OCR of any length, "
            "chrF short free text; BLEU (-) is shown only for answers averaging four words or more."]


def render(info: CheckpointInfo, merged: bool, repo_id: str | None, local_name: str) -> str:
    """The card; snippets load `repo_id` when pushing, else the export directory (`local_name`)."""
    recipe = scrub(info.recipe or {})
    base = base_model_id(info)
    name = repo_id or (info.record or {}).get("recipe_name", "internvl-lora")
    load_id = repo_id or local_name
    frozen = [part for part, key in (("vision tower", "freeze_vit"), ("projector", "freeze_aligner"),
                                     ("language model", "freeze_llm")) if recipe.get(key)]
    adapter = info.adapter_config
    targets = adapter.get("target_modules") or recipe.get("target_modules") or []
    knobs = ", ".join(f"{k}={v}" for k, v in sorted(info.knobs.items())) or "swift defaults"
    route = ("official remote-code checkpoint (swift model_type internvl_chat, loaded with trust_remote_code)"
             if info.model_type == "internvl_chat" else
             "transformers-native -HF checkpoint (swift model_type internvl)")
    lmdeploy = (f"lmdeploy serve api_server {load_id}" if merged else
                "# lmdeploy serves merged weights: python export.py CHECKPOINT --merge, then "
                "lmdeploy serve api_server <merged dir>")
    versions = (info.record or {}).get("versions") or {}
    return "\n".join([
        "---",
        f"base_model: {base}",
        f"library_name: {'transformers' if merged else 'peft'}",
        "tags: [internvl, lora, ms-swift, internvl-kit, image-text-to-text]",
        "---",
        f"# {name}",
        "",
        f"{'Merged' if merged else 'LoRA adapter of a'} fine-tune of `{base}` with ms-swift "
        f"({info.model_type} / template `{info.template}`), exported by internvl-kit.",
        "",
        "## What was trained",
        "",
        "| | |",
        "| --- | --- |",
        f"| base model | {_cell(base)}: {route} |",
        f"| objective | {_cell(_objective(info))} |",
        f"| tuner | {recipe.get('tuner_type', 'lora')} r={adapter.get('r', recipe.get('lora_rank'))} "
        f"alpha={adapter.get('lora_alpha', recipe.get('lora_alpha'))} |",
        f"| LoRA targets | {_cell(', '.join(map(str, targets)) if isinstance(targets, list) else targets)} |",
        f"| frozen | {', '.join(frozen) or 'nothing'} |",
        f"| max_length | {info.max_length} |",
        f"| InternVL tiling | {_cell(knobs)} |",
        f"| trained for | {_length(recipe)} |",
        f"| learning rate | {recipe.get('learning_rate')} |",
        "",
        "## Data",
        "",
        *(_dataset_lines(info.recipe or {}) or ["- (not recorded)"]),
        "",
        "## Evaluation",
        "",
        *_metrics_lines(info),
        "",
        "## How to use",
        "",
        f"Images are tiled as in training ({knobs}); "
        + ("the merged configs carry the tile limit too." if merged else
           "swift's infer does not restore tiling from an adapter, so the commands below set it."),
        "",
        "### transformers",
        "",
        "```python",
        transformers_snippet(info, merged, load_id).rstrip(),
        "```",
        "",
        "### swift",
        "",
        _swift_note(info, merged),
        "",
        "```bash",
        swift_command(info, merged, load_id),
        "```",
        "",
        "### lmdeploy",
        "",
        "```bash",
        lmdeploy,
        "```",
        "",
        "## Recipe",
        "",
        "```yaml",
        yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True).rstrip(),
        "```",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if v),
        "",
    ])
