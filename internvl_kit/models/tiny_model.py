"""Build tiny, randomly initialised InternVLs of both routes, for offline tests and the demo.

Real checkpoints cannot be downloaded here, so every end-to-end path (swift sft / infer / export) runs
against these instead. Two architectures, as users meet them through swift:
  hf    transformers-native InternVLForConditionalGeneration (the `-HF` checkpoints; model_type internvl)
  chat  InternVLChatModel through trust_remote_code (the official checkpoints; model_type internvl_chat),
        with remote-code files the project writes itself (internvl_kit/models/remote_code)
Each has InternViT -> pixel-unshuffle MLP -> a Qwen2 or Qwen3 LLM, a byte-level BPE tokenizer trained
locally with the ChatML and InternVL special tokens, and 56-px tiles of 4 image tokens. Same seed, same bytes.

    python -m internvl_kit.models.tiny_model OUT_DIR [--arch hf|chat] [--llm qwen2|qwen3] [--seed 0] [--max-patches 12]
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..fileio import replace_dir

TILE = 56          # px per tile; tile/patch must be even for pixel unshuffle
PATCH = 14
TOKENS_PER_TILE = (TILE // PATCH) ** 2 // 4   # downsample_ratio 0.5 -> 4
VOCAB_SIZE = 1024
# Bump when the builder's output changes, so cached copies are rebuilt.
BUILDER_VERSION = 3

CHATML_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
INTERNVL_TOKENS = ["<img>", "</img>", "<IMG_CONTEXT>", "<video>", "<ref>", "</ref>",
                   "<box>", "</box>", "<quad>", "</quad>"]

CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<IMG_CONTEXT>\n"
    "{% elif item['type'] == 'video' %}<video>\n"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def _corpus() -> list[str]:
    """A fixed training corpus: English, digits, LaTeX and the demo's vocabulary."""
    words = ("the a an of to in is it and or what which image picture shows describe answer question "
             "red green blue yellow black white purple orange circle square triangle star shape color "
             "left right top bottom center large small one two three four five six seven eight nine ten "
             "you are assistant user system please write formula latex text read recognize").split()
    latex = [r"\frac{a}{b}", r"x^{2}+y^{2}=z^{2}", r"\sum_{i=1}^{n} i", r"\sqrt{x}", r"\alpha+\beta",
             r"\int_{0}^{1} f(x) dx", r"e^{i\pi}+1=0", r"\left( a \right)", r"\mathrm{d}x"]
    lines = []
    for i, w in enumerate(words):
        lines.append(" ".join(words[(i + k * 7) % len(words)] for k in range(12)) + ".")
        lines.append(f"{w} {i} {i * 37 % 101} {latex[i % len(latex)]}")
    lines.extend(latex * 4)
    lines.append("0123456789 ,.;:!?()[]{}<>+-*/=_^\\|'\"`~@#$%&")
    return lines


def build_tokenizer():
    """Train a small byte-level BPE and wrap it as a Qwen2 tokenizer with InternVL tokens."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
    from transformers import Qwen2Tokenizer
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    # Qwen2's own pipeline (NFC, digit-splitting regex, byte level): transformers rebuilds exactly this
    # when it loads the tokenizer, so tokenizer.json must agree or raw `tokenizers` counts would differ.
    core = Tokenizer(models.BPE())
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE, special_tokens=CHATML_TOKENS + INTERNVL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    core.train_from_iterator(_corpus(), trainer)
    return Qwen2Tokenizer(
        tokenizer_object=core,
        unk_token=None, bos_token=None, eos_token="<|im_end|>", pad_token="<|endoftext|>",
        extra_special_tokens={
            "start_image_token": "<img>", "end_image_token": "</img>",
            "context_image_token": "<IMG_CONTEXT>", "video_token": "<video>",
        },
        model_max_length=32768,
        chat_template=CHAT_TEMPLATE,
    )


ARCHS = ("hf", "chat")
LLMS = ("qwen2", "qwen3")
REMOTE_CODE = Path(__file__).with_name("remote_code")
REMOTE_FILES = ("configuration_intern_vit.py", "configuration_internvl_chat.py", "modeling_intern_vit.py",
                "modeling_internvl_chat.py")
AUTO_MAP = {"AutoConfig": "configuration_internvl_chat.InternVLChatConfig",
            "AutoModel": "modeling_internvl_chat.InternVLChatModel",
            "AutoModelForCausalLM": "modeling_internvl_chat.InternVLChatModel"}
VISION = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
              image_size=TILE, patch_size=PATCH)


def _text_config(llm: str, vocab_size: int, eos: int, pad: int, tie: bool) -> dict:
    cfg = dict(model_type=llm, vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=32768,
               tie_word_embeddings=tie, initializer_range=0.1, bos_token_id=None, eos_token_id=eos,
               pad_token_id=pad)
    if llm == "qwen3":
        cfg["head_dim"] = 16        # Qwen3's default (128) would not fit a 64-wide model
    return cfg


def _hf_model(tokenizer, llm: str, max_patches: int):
    from transformers import (GotOcr2ImageProcessor, InternVLConfig, InternVLForConditionalGeneration,
                              InternVLProcessor, InternVLVideoProcessor)
    image_token_id = tokenizer.convert_tokens_to_ids("<IMG_CONTEXT>")
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    config = InternVLConfig(
        vision_config=dict(VISION, norm_type="layer_norm", use_qk_norm=False, use_mean_pooling=True),
        text_config=_text_config(llm, len(tokenizer), eos, pad, tie=True),
        image_token_id=image_token_id, image_seq_length=TOKENS_PER_TILE, downsample_ratio=0.5,
        vision_feature_layer=-1, vision_feature_select_strategy="default", tie_word_embeddings=True,
    )
    config.eos_token_id, config.pad_token_id = eos, pad
    model = InternVLForConditionalGeneration(config)
    size = {"height": TILE, "width": TILE}
    processor = InternVLProcessor(
        image_processor=GotOcr2ImageProcessor(size=size, crop_to_patches=True, min_patches=1,
                                              max_patches=max_patches),
        video_processor=InternVLVideoProcessor(size=size),
        tokenizer=tokenizer, image_seq_length=TOKENS_PER_TILE, chat_template=CHAT_TEMPLATE,
    )
    return model, processor


def _chat_model(tokenizer, llm: str, max_patches: int):
    """InternVLChatModel from the project's remote code, configured like the official checkpoints."""
    from .remote_code.configuration_internvl_chat import InternVLChatConfig
    from .remote_code.modeling_internvl_chat import InternVLChatModel
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    arch = {"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[llm]
    text = _text_config(llm, len(tokenizer), eos, pad, tie=False)
    del text["model_type"]
    config = InternVLChatConfig(
        vision_config=dict(VISION, architectures=["InternVisionModel"], norm_type="layer_norm",
                           qk_normalization=False, initializer_range=0.1),
        llm_config=dict(text, architectures=[arch]),
        force_image_size=TILE, downsample_ratio=0.5, template="internvl2_5", ps_version="v2", select_layer=-1,
        dynamic_image_size=True, use_thumbnail=True, min_dynamic_patch=1, max_dynamic_patch=max_patches,
        architectures=["InternVLChatModel"], tie_word_embeddings=False,
    )
    config.auto_map = dict(AUTO_MAP)
    config.eos_token_id, config.pad_token_id = eos, pad
    return InternVLChatModel(config), tokenizer


def build(out_dir: str | os.PathLike, seed: int = 0, max_patches: int = 12, arch: str = "hf",
          llm: str = "qwen2") -> Path:
    """Write a tiny model of the given route (with tokenizer and processor) to out_dir, atomically."""
    import torch
    from transformers import GenerationConfig

    if arch not in ARCHS or llm not in LLMS:
        raise ValueError(f"arch must be one of {ARCHS} and llm one of {LLMS}, got {arch!r} / {llm!r}")
    out = Path(out_dir)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    model, processor = (_hf_model if arch == "hf" else _chat_model)(tokenizer, llm, max_patches)
    model.eval()
    eos, pad = tokenizer.convert_tokens_to_ids("<|im_end|>"), tokenizer.convert_tokens_to_ids("<|endoftext|>")
    model.generation_config = GenerationConfig(eos_token_id=[eos, pad], pad_token_id=pad, do_sample=False,
                                               max_new_tokens=64)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        if arch == "chat":              # PreTrainedModel alone does not save it; the official repos ship one
            model.generation_config.save_pretrained(tmp)
            for name in REMOTE_FILES:
                shutil.copyfile(REMOTE_CODE / name, tmp / name)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def digest(model_dir: str | os.PathLike) -> str:
    """sha256 over every file of a model directory (names and bytes): equal digests, equal models."""
    h = hashlib.sha256()
    root = Path(model_dir)
    for p in sorted(q for q in root.rglob("*") if q.is_file()):
        h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m internvl_kit.models.tiny_model", description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", help="directory to write (replaced if it exists)")
    ap.add_argument("--arch", choices=ARCHS, default="hf",
                    help="hf: InternVLForConditionalGeneration; chat: InternVLChatModel via trust_remote_code")
    ap.add_argument("--llm", choices=LLMS, default="qwen2", help="language model (InternVL3: qwen2, 3.5: qwen3)")
    ap.add_argument("--seed", type=int, default=0, help="weight init seed (same seed, same bytes)")
    ap.add_argument("--max-patches", type=int, default=12, help="max tiles per image in the model's own config")
    args = ap.parse_args(argv)
    out = build(args.out_dir, seed=args.seed, max_patches=args.max_patches, arch=args.arch, llm=args.llm)
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    print(json.dumps({"path": str(out), "bytes": size, "sha256": digest(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
