"""Recipe system: inheritance, typed overrides, and every error class with its message."""
from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from internvl_kit.recipe import RecipeError, load_recipe

BASE = """\
model: some/model
model_type: internvl
template: internvl_hf
dataset: [train.jsonl]
lora_rank: 8
internvl:
  max_num: 12
"""


def write(tmp: Path, name: str, text: str) -> Path:
    p = tmp / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text), encoding="utf-8")
    return p


def problems_of(path: Path, overrides: list[str] | None = None) -> list[str]:
    with pytest.raises(RecipeError) as e:
        load_recipe(path, overrides)
    return [str(p) for p in e.value.problems]


# ---------------------------------------------------------------- inheritance and overrides

def test_extends_deep_merges_mappings_and_replaces_scalars(tmp_path):
    write(tmp_path, "base/root.yaml", BASE)
    write(tmp_path, "base/mid.yaml", "extends: root.yaml\nlora_rank: 16\ninternvl:\n  video_segments: 4\n"
                                    "template: internvl3_5\nmodel_type: internvl_chat\n")
    leaf = write(tmp_path, "leaf.yaml", "extends: base/mid.yaml\nlearning_rate: 1e-4\n")
    r = load_recipe(leaf)
    assert r.data["lora_rank"] == 16                                   # child replaces parent
    assert r.data["internvl"] == {"max_num": 12, "video_segments": 4}  # mappings merge
    assert r.data["learning_rate"] == 1e-4 and isinstance(r.data["learning_rate"], float)
    assert [p.name for p in r.chain] == ["root.yaml", "mid.yaml", "leaf.yaml"]
    assert "extends" not in r.data


def test_extends_list_later_parent_wins(tmp_path):
    write(tmp_path, "a.yaml", BASE)
    write(tmp_path, "b.yaml", "lora_rank: 32\n")
    leaf = write(tmp_path, "leaf.yaml", "extends: [a.yaml, b.yaml]\n")
    assert load_recipe(leaf).data["lora_rank"] == 32


def test_overrides_are_typed_by_the_schema(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE)
    r = load_recipe(leaf, ["lora_rank=16", "freeze_vit=false", "dataset=[a.jsonl,b.jsonl]",
                           "val_dataset=v.jsonl", "learning_rate=2e-5", "internvl.max_num=6",
                           "model=1.0", "~lora_rank"])
    assert "lora_rank" not in r.data                  # ~key deletes (applied in order)
    assert r.data["freeze_vit"] is False
    assert r.data["dataset"] == ["a.jsonl", "b.jsonl"]
    assert r.data["val_dataset"] == ["v.jsonl"]       # a scalar for a list key becomes a list
    assert r.data["learning_rate"] == 2e-5
    assert r.data["internvl"]["max_num"] == 6
    assert r.data["model"] == "1.0"                   # string keys stay strings
    assert r.overrides[0] == "lora_rank=16"


def test_train_type_is_an_alias_with_a_warning(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "train_type: lora\n")
    r = load_recipe(leaf)
    assert r.data["tuner_type"] == "lora" and "train_type" not in r.data
    assert any("train_type is the swift 3.x name" in w and "r.yaml:8" in w for w in r.warnings)


# ---------------------------------------------------------------- error classes

def test_unknown_key_suggests_the_right_one_with_file_and_line(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "lora_rnak: 16\n")
    (msg,) = problems_of(leaf)
    assert msg == f"{leaf.resolve()}:8: lora_rnak: unknown key; did you mean 'lora_rank'?"


def test_unknown_nested_key_and_unknown_override(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE)
    msgs = problems_of(leaf, ["internvl.max_nun=3", "learnig_rate=1e-4"])
    assert any("internvl.max_nun: unknown key; did you mean 'max_num'?" in m for m in msgs)
    assert any(m.startswith("command line: learnig_rate: unknown key; did you mean 'learning_rate'?")
               for m in msgs)


def test_wrong_type_names_what_was_given(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "freeze_vit: maybe\n")
    (msg,) = problems_of(leaf)
    assert msg.endswith("r.yaml:8: freeze_vit: expected boolean, got 'maybe' (str)")


def test_wrong_type_from_override(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE)
    (msg,) = problems_of(leaf, ["lora_rank=abc"])
    assert msg == "command line: lora_rank: expected integer, got 'abc' (str)"


def test_bad_value_enum_and_bounds(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE.replace("lora_rank: 8", "lora_rank: 0") + "torch_dtype: bfloat61\n")
    msgs = problems_of(leaf)
    assert any("torch_dtype: 'bfloat61' is not allowed; did you mean 'bfloat16'?; allowed: bfloat16, "
               "float16, float32" in m for m in msgs)
    assert any(m.endswith("lora_rank: must be >= 1, got 0 (int)") for m in msgs)


def test_missing_required_key(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE.replace("dataset: [train.jsonl]\n", ""))
    (msg,) = problems_of(leaf)
    assert msg.endswith("dataset: required key is missing")


def test_missing_recipe_file_and_missing_parent(tmp_path):
    (msg,) = problems_of(tmp_path / "nope.yaml")
    assert msg == f"{tmp_path / 'nope.yaml'}: file not found"
    leaf = write(tmp_path, "r.yaml", "extends: base/missing.yaml\n" + BASE)
    msgs = problems_of(leaf)
    assert any(":1: extends: parent recipe 'base/missing.yaml' not found" in m for m in msgs)


def test_inheritance_cycle_is_reported_with_the_chain(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n" + BASE)
    write(tmp_path, "b.yaml", "extends: c.yaml\n")
    c = write(tmp_path, "c.yaml", "extends: a.yaml\n")
    msgs = problems_of(c)
    assert any("inheritance cycle:" in m and "c.yaml -> " in m and "a.yaml -> " in m and "b.yaml -> " in m
               for m in msgs)


def test_all_errors_are_reported_at_once(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "lora_rnak: 1\nfreeze_vit: maybe\nlora_alpha: -3\n")
    msgs = problems_of(leaf, ["learning_rate=fast"])
    assert len(msgs) == 4
    with pytest.raises(RecipeError) as e:
        load_recipe(leaf, ["learning_rate=fast"])
    assert str(e.value).startswith("recipe has 4 problems:")


def test_yaml_syntax_error_names_the_line(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "dataset: [unclosed\nlora_rank: 3\n")
    (msg,) = problems_of(leaf)
    assert "invalid YAML" in msg and str(leaf) in msg and ":9:" in msg


def test_recipes_are_data_no_python_tags(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "system: !!python/object/apply:os.system ['echo pwned']\n")
    (msg,) = problems_of(leaf)
    assert "invalid YAML" in msg and "python/object" in msg


def test_secrets_are_refused_with_the_environment_hint(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "hub_token: ms-abc\n")
    (msg,) = problems_of(leaf)
    assert "hub_token: secrets never go in recipes (they are saved with every run and checkpoint): set " \
           "MODELSCOPE_API_TOKEN" in msg
    leaf = write(tmp_path, "r2.yaml", BASE + "my_token: ms-abc\n")
    (msg,) = problems_of(leaf)
    assert "my_token: unknown key; secrets never go in recipes: set MODELSCOPE_API_TOKEN" in msg


def test_template_must_fit_model_type(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE.replace("template: internvl_hf", "template: internvl3_5"))
    (msg,) = problems_of(leaf)
    assert "template: template 'internvl3_5' does not fit model_type 'internvl'; allowed: internvl_hf" in msg


@pytest.mark.parametrize("knob", ["input_size: 448", "video_max_num: 2", "video_segments: 16"])
def test_hf_template_refuses_knobs_it_cannot_apply(tmp_path, knob):
    leaf = write(tmp_path, "r.yaml", BASE + f"  {knob}\n")
    (msg,) = problems_of(leaf)
    assert f"internvl.{knob.split(':')[0]}: not supported with template internvl_hf" in msg


def test_chat_template_accepts_every_knob(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE.replace("internvl_hf", "internvl3_5").replace(
        "model_type: internvl", "model_type: internvl_chat")
        + "  input_size: 448\n  video_max_num: 2\n  video_segments: 16\n")
    assert load_recipe(leaf).knobs == {"max_num": 12, "input_size": 448, "video_max_num": 2,
                                       "video_segments": 16}


def test_train_type_and_tuner_type_together_is_an_error(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "train_type: lora\ntuner_type: full\n")
    (msg,) = problems_of(leaf)
    assert "train_type: both train_type (removed in swift 4.x) and tuner_type are set" in msg


def test_malformed_override(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE)
    msgs = problems_of(leaf, ["lora_rank", "~nothing_here"])
    assert "command line: override 'lora_rank' is not key=value (or ~key to delete)" in msgs
    assert "command line: nothing_here: cannot delete 'nothing_here': no such key" in msgs
    assert load_recipe(leaf, ["~max_steps"]).warnings == [       # a real key left unset: nothing to do
        "~max_steps: max_steps is not set by the recipe; nothing to delete"]


# ---------------------------------------------------------------- the model picks the route

@pytest.mark.parametrize("model,route", [
    ("OpenGVLab/InternVL3_5-8B", ("internvl_chat", "internvl3_5")),
    ("OpenGVLab/InternVL3_5-8B-HF", ("internvl", "internvl_hf")),
    ("OpenGVLab/InternVL3-8B", ("internvl_chat", "internvl2_5")),
    ("OpenGVLab/InternVL3-8B-hf", ("internvl", "internvl_hf")),
    ("OpenGVLab/InternVL3_5-GPT-OSS-20B-A4B-Preview", ("internvl_chat", "internvl3_5_gpt")),
    ("builtin:tiny-internvl3", ("internvl_chat", "internvl2_5")),
    ("builtin:tiny-internvl-hf", ("internvl", "internvl_hf")),
])
def test_the_model_picks_model_type_and_template(tmp_path, model, route):
    leaf = write(tmp_path, "r.yaml", f"model: {model}\ndataset: [train.jsonl]\n")
    r = load_recipe(leaf)
    assert (r.data["model_type"], r.data["template"]) == route


def test_a_local_checkpoint_picks_its_route_from_its_config(tmp_path):
    import json
    ckpt = tmp_path / "my-finetune"
    ckpt.mkdir()
    (ckpt / "config.json").write_text(json.dumps({"model_type": "internvl_chat",
                                                  "llm_config": {"architectures": ["Qwen3ForCausalLM"]}}))
    leaf = write(tmp_path, "r.yaml", f"model: {ckpt}\ndataset: [train.jsonl]\n")
    assert (load_recipe(leaf).data["model_type"], load_recipe(leaf).data["template"]) == ("internvl_chat",
                                                                                          "internvl3_5")


def test_switching_the_headline_recipe_to_the_hf_checkpoint_is_one_key():
    from conftest import ROOT
    recipe = ROOT / "recipes/internvl3_5-8b-latex-ocr.yaml"
    r = load_recipe(recipe, ["model=OpenGVLab/InternVL3_5-8B-HF"])
    assert (r.data["model_type"], r.data["template"]) == ("internvl", "internvl_hf")
    (msg,) = problems_of(recipe, ["model=OpenGVLab/InternVL3_5-8B-HF", "template=internvl3_5"])
    assert ("template: OpenGVLab/InternVL3_5-8B-HF takes model_type 'internvl' with template 'internvl_hf'"
            in msg and "remove template from the recipe" in msg)


def test_an_unknown_model_needs_model_type_and_template(tmp_path):
    leaf = write(tmp_path, "r.yaml", "model: someone/some-vlm\ndataset: [train.jsonl]\n")
    msgs = problems_of(leaf)
    assert len(msgs) == 2 and all("required for 'someone/some-vlm'" in m for m in msgs)


# ---------------------------------------------------------------- preference recipes (swift rlhf)

def test_rlhf_type_makes_a_preference_recipe_read_as_swift_rlhf_reads_it(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "rlhf_type: dpo\nloss_type: [sigmoid, bco_pair, sft]\n"
                                            "loss_weights: [0.8, 0.2, 1.0]\n")
    r = load_recipe(leaf, ["beta=0.2", "loss_type=[sigmoid,sft]", "loss_weights=[1,1]"])
    assert r.command == "rlhf" and r.data["loss_type"] == ["sigmoid", "sft"] and r.data["beta"] == 0.2
    assert load_recipe(write(tmp_path, "s.yaml", BASE + "loss_type: cross_entropy\n")).command == "sft"
    # an override can make a recipe a preference one: its loss_type list is then read as rlhf reads it
    assert load_recipe(leaf.with_name("s.yaml"), ["rlhf_type=dpo", "loss_type=[sigmoid]"]).data["loss_type"] == ["sigmoid"]


def test_a_preference_key_in_an_sft_recipe_names_the_command_that_reads_it(tmp_path):
    leaf = write(tmp_path, "r.yaml", BASE + "beta: 0.1\n")
    (msg,) = problems_of(leaf)
    assert f"{leaf}:8: beta: only `swift rlhf` (preference tuning) reads beta: set rlhf_type" in msg
    (msg,) = problems_of(write(tmp_path, "s.yaml", BASE), ["ref_adapters=[ckpt]"])
    assert "command line: ref_adapters: only `swift rlhf`" in msg
    # a list for loss_type is how rlhf reads it, not sft
    assert any("loss_type" in p and "expected" in p
               for p in problems_of(write(tmp_path, "t.yaml", BASE + "loss_type: [sigmoid]\n")))
    assert any("beta: must be >= 0" in p for p in problems_of(write(tmp_path, "u.yaml", BASE + "rlhf_type: dpo\nbeta: -1\n")))


def test_from_sft_chains_with_one_key_and_refuses_what_cannot_chain(tmp_path):
    run = tmp_path / "sft-run"
    for n in (5, 60, 10):
        (run / f"checkpoint-{n}").mkdir(parents=True)
        (run / f"checkpoint-{n}" / "adapter_config.json").write_text("{}")
    leaf = write(tmp_path, "r.yaml", BASE + "rlhf_type: dpo\n")
    r = load_recipe(leaf, [f"from_sft={run}"])                 # a run directory: its last checkpoint
    want = [str((run / "checkpoint-60").resolve())]
    assert r.data["adapters"] == want and r.data["ref_adapters"] == want and "from_sft" not in r.data
    assert r.data["adapters"] is not r.data["ref_adapters"]   # two lists: the saved recipe.yaml has no YAML alias
    assert load_recipe(leaf, [f"from_sft={run / 'checkpoint-5'}"]).data["adapters"] == [str((run / "checkpoint-5").resolve())]
    (msg,) = problems_of(write(tmp_path, "s.yaml", BASE), [f"from_sft={run}"])
    assert "from_sft: from_sft chains an SFT run into preference tuning: set rlhf_type" in msg
    (msg,) = problems_of(leaf, [f"from_sft={run}", f"adapters=[{run}]"])
    assert "from_sft sets adapters and ref_adapters itself" in msg
    (msg,) = problems_of(leaf, [f"from_sft={tmp_path / 'nothing'}"])
    assert "is no LoRA checkpoint" in msg
