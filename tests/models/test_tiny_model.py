"""The tiny InternVL: small, fast, deterministic, and a real InternVL to transformers and swift."""
from __future__ import annotations

import json
import time

import pytest

from internvl_kit.models import tiny_model


@pytest.fixture(scope="module")
def two_builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    t = time.perf_counter()
    a = tiny_model.build(root / "a", seed=0)
    seconds = time.perf_counter() - t
    b = tiny_model.build(root / "b", seed=0)
    c = tiny_model.build(root / "c", seed=1)
    return a, b, c, seconds


def test_small_fast_and_byte_identical_for_the_same_seed(two_builds):
    a, b, c, seconds = two_builds
    size = sum(p.stat().st_size for p in a.rglob("*") if p.is_file())
    assert size < 5 * 1024 * 1024
    assert seconds < 15
    assert tiny_model.digest(a) == tiny_model.digest(b)
    assert tiny_model.digest(a) != tiny_model.digest(c)      # the seed really changes the weights
    assert not list(a.parent.glob(".a.*"))                   # no temp dir left behind


def test_loads_as_transformers_internvl_with_its_special_tokens(two_builds):
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    path = two_builds[0]
    model = AutoModelForImageTextToText.from_pretrained(path)
    processor = AutoProcessor.from_pretrained(path)
    assert type(model).__name__ == "InternVLForConditionalGeneration"
    tok = processor.tokenizer
    for t in tiny_model.CHATML_TOKENS + tiny_model.INTERNVL_TOKENS:
        assert len(tok.encode(t, add_special_tokens=False)) == 1, t
    assert tok.convert_tokens_to_ids("<IMG_CONTEXT>") == model.config.image_token_id
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["architectures"] == ["InternVLForConditionalGeneration"]

    image = Image.new("RGB", (112, 56), "red")          # 2:1 -> 2 tiles + thumbnail = 3 tiles
    msgs = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what?"}]}]
    text = processor.apply_chat_template(msgs, add_generation_prompt=True)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    n_ctx = int((inputs["input_ids"] == model.config.image_token_id).sum())
    assert inputs["pixel_values"].shape[0] == 3
    assert n_ctx == 3 * tiny_model.TOKENS_PER_TILE
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.shape[-1] == len(tok) and torch.isfinite(logits).all()


def test_command_line(tmp_path):
    from conftest import run_cli
    out = run_cli("-m", "internvl_kit.models.tiny_model", str(tmp_path / "m"), "--seed", "3")
    assert out.returncode == 0, out.stderr
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["sha256"] == tiny_model.digest(tmp_path / "m") and info["bytes"] < 5 * 1024 * 1024


# ------------------------------------------------------------------ the chat route (internvl_chat)
@pytest.fixture(scope="module", params=["qwen2", "qwen3"])
def chat_builds(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"chat-{request.param}")
    t = time.perf_counter()
    a = tiny_model.build(root / "a", seed=0, arch="chat", llm=request.param)
    seconds = time.perf_counter() - t
    b = tiny_model.build(root / "b", seed=0, arch="chat", llm=request.param)
    c = tiny_model.build(root / "c", seed=1, arch="chat", llm=request.param)
    return request.param, a, b, c, seconds


def test_chat_model_is_small_fast_and_byte_identical_for_the_same_seed(chat_builds):
    _, a, b, c, seconds = chat_builds
    assert sum(p.stat().st_size for p in a.rglob("*") if p.is_file()) < 2 * 1024 * 1024
    assert seconds < 20
    assert tiny_model.digest(a) == tiny_model.digest(b) != tiny_model.digest(c)


def test_chat_model_is_an_official_style_remote_code_checkpoint(chat_builds):
    llm, path = chat_builds[0], chat_builds[1]
    cfg = json.loads((path / "config.json").read_text())
    assert cfg["model_type"] == "internvl_chat" and cfg["architectures"] == ["InternVLChatModel"]
    assert cfg["auto_map"]["AutoModel"] == "modeling_internvl_chat.InternVLChatModel"
    assert cfg["auto_map"]["AutoConfig"] == "configuration_internvl_chat.InternVLChatConfig"
    assert cfg["llm_config"]["architectures"] == [{"qwen2": "Qwen2ForCausalLM", "qwen3": "Qwen3ForCausalLM"}[llm]]
    for key in ("vision_config", "llm_config", "template", "downsample_ratio", "ps_version", "force_image_size",
                "dynamic_image_size", "use_thumbnail", "max_dynamic_patch"):
        assert key in cfg, key
    modeling = (path / "modeling_internvl_chat.py").read_text()
    assert "class InternVLChatModel(PreTrainedModel):" in modeling                 # no GenerationMixin base
    assert "import GenerationMixin" not in modeling and "GenerationMixin)" not in modeling
    vit = (path / "modeling_intern_vit.py").read_text()
    assert "from timm.models.layers import DropPath" in vit and "from einops import rearrange" in vit


def test_chat_model_loads_through_trust_remote_code_with_the_official_interface(chat_builds):
    import inspect

    import torch
    from transformers import AutoModel, AutoTokenizer
    path = chat_builds[1]
    model = AutoModel.from_pretrained(path, trust_remote_code=True).eval()
    tok = AutoTokenizer.from_pretrained(path, trust_remote_code=True)
    assert type(model).__name__ == "InternVLChatModel" and type(model.config).__name__ == "InternVLChatConfig"
    type(model.config)()                                   # constructible with no arguments
    assert model.num_image_token == tiny_model.TOKENS_PER_TILE and model.img_context_token_id is None
    for part in ("vision_model", "mlp1", "language_model"):
        assert isinstance(getattr(model, part), torch.nn.Module), part
    assert list(inspect.signature(model.forward).parameters)[:6] == [
        "pixel_values", "input_ids", "attention_mask", "position_ids", "image_flags", "past_key_values"]
    ctx = tok.convert_tokens_to_ids("<IMG_CONTEXT>")
    pixels = torch.randn(3, 3, tiny_model.TILE, tiny_model.TILE)
    assert model.extract_feature(pixels).shape == (3, tiny_model.TOKENS_PER_TILE, 64)
    model.img_context_token_id = ctx
    ids = torch.tensor([tok.encode("<img>") + [ctx] * 12 + tok.encode("</img>\nwhat colour?")])
    out = model(pixel_values=pixels, input_ids=ids, attention_mask=torch.ones_like(ids),
                image_flags=torch.ones(3, 1, dtype=torch.long), labels=ids)
    assert torch.isfinite(out.loss) and out.logits.shape[:2] == ids.shape
    gen = model.generate(pixel_values=pixels, input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                         do_sample=False)
    assert gen.shape[0] == 1
    answer = model.chat(tok, pixels, "what colour?", dict(max_new_tokens=3, do_sample=False))
    assert isinstance(answer, str)


def test_second_load_in_a_process_loses_generation_mixin_like_the_official_class(chat_builds):
    """transformers adds GenerationMixin to a remote-code class on its first load only; peft's causal-LM
    wrapper (adapters) then fails. ensure_generation_mixin is the toolkit's repair."""
    from transformers import AutoModelForCausalLM

    from internvl_kit.models.model_loading import ensure_generation_mixin
    path = chat_builds[2]
    AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
    again = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=True)
    assert not hasattr(again, "prepare_inputs_for_generation")
    ensure_generation_mixin(again)
    assert hasattr(again, "prepare_inputs_for_generation") and again.generation_config is not None


def test_swift_loads_the_chat_model_and_its_template_counts_like_the_preflight(chat_builds, monkeypatch):
    from PIL import Image
    from swift import get_model_processor, get_template

    from data_tools.tokens import Counter, TilingConfig
    llm, path = chat_builds[0], chat_builds[1]
    template_type = {"qwen2": "internvl2_5", "qwen3": "internvl3_5"}[llm]
    monkeypatch.setenv("INPUT_SIZE", str(tiny_model.TILE))
    monkeypatch.setenv("MAX_NUM", "4")
    model, processor = get_model_processor(str(path), model_type="internvl_chat", download_model=False)
    assert type(model).__name__ == "InternVLChatModel"
    template = get_template(processor, template_type=template_type)
    template.set_mode("train")
    messages = [{"role": "user", "content": "<image>What is it?"}, {"role": "assistant", "content": "a square"}]
    encoded = template.encode({"messages": messages, "images": [Image.new("RGB", (200, 60), "red")]})
    counter = Counter(template_type, TilingConfig.for_model(path, template_type, 4, tiny_model.TILE), path)
    assert counter.total(messages, [(200, 60)]) == len(encoded["input_ids"])
    assert encoded["pixel_values"].shape[1:] == (3, tiny_model.TILE, tiny_model.TILE)
