"""Turn CLI flags and/or a recipe into validation options: limits, tiling and the token counter."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .tokens import TEMPLATES, Counter, TilingConfig, find_tokenizer
from .validate import Options

DEFAULT_TEMPLATE = "internvl3_5"


class UsageError(Exception):
    """Bad flags or recipe: exit 2 with this message."""


@dataclass
class Setup:
    options: Options
    files: list[Path]        # dataset files named by the recipe (when no FILE is given)
    note: str                # how tokens are counted, for the report


def build(recipe: str | None = None, *, max_length: int | None = None, max_num: int | None = None,
          model: str | None = None, template: str | None = None, tokenizer: str | None = None,
          image_root: str | None = None, deep: bool = False, tokens: bool = True) -> Setup:
    files: list[Path] = []
    input_size = video_segments = video_max_num = None
    template_flag = template
    if recipe:
        settings = recipe_settings(recipe)
        model = model or settings.get("model")
        template = template or settings.get("template")
        max_length = max_length or settings.get("max_length")
        max_num = max_num or settings.get("max_num")
        input_size = settings.get("input_size")
        video_segments, video_max_num = settings.get("video_segments"), settings.get("video_max_num")
        files = [Path(f) for f in settings.get("files", [])]
    return make(model=model, template=template, max_length=max_length, max_num=max_num, input_size=input_size,
                video_segments=video_segments, video_max_num=video_max_num, tokenizer=tokenizer, image_root=image_root, deep=deep, tokens=tokens, files=files,
                strict_template=template_flag is not None)


def recipe_settings(recipe: str) -> dict:
    """model, template, max_length, max_num, input_size and local dataset files of a recipe.

    Recipes (extends, overrides, builtin refs) are the training toolkit's business, and data_tools stands
    alone: the toolkit plugs its reader in through the `data_tools.recipe_reader` entry point."""
    from importlib.metadata import entry_points
    readers = entry_points(group="data_tools.recipe_reader")
    if not readers:
        raise UsageError(f"--recipe {recipe}: reading recipes needs internvl-kit installed (pip install -e .); "
                         f"pass --model/--template/--max-length instead")
    try:
        return next(iter(readers)).load()(recipe)
    except ValueError as e:
        raise UsageError(str(e)) from None


def make(*, model: str | None, template: str | None, max_length: int | None, max_num: int | None,
         input_size: int | None = None, video_segments: int | None = None, video_max_num: int | None = None,
         tokenizer: str | None = None, image_root: str | None = None,
         deep: bool = False, tokens: bool = True, files: list[Path] | None = None,
         strict_template: bool = False) -> Setup:
    """Options for resolved settings (train.py's preflight calls this with the recipe's values)."""
    if template is not None and template not in TEMPLATES and not strict_template:
        tokens = False              # a recipe's template without token rules: the rest is still checked
        note_off = f"token preflight off: no token rules for template {template} (known: {', '.join(TEMPLATES)})"
    else:
        note_off = "token preflight off"
    template = template or DEFAULT_TEMPLATE
    if tokens and template not in TEMPLATES:
        raise UsageError(f"--template {template!r}: token rules exist for {', '.join(TEMPLATES)}")
    opts = Options(max_length=max_length, max_num=max_num, image_root=image_root, deep=deep)
    note = note_off
    if tokens:
        tok_dir = Path(tokenizer) if tokenizer else find_tokenizer(model)
        if tokenizer and not (tok_dir / "tokenizer.json").is_file():
            raise UsageError(f"--tokenizer {tokenizer}: no tokenizer.json there")
        model_dir = Path(model) if model and Path(model).is_dir() else tok_dir
        tiling = TilingConfig.for_model(model_dir, template, max_num, input_size, video_segments, video_max_num)
        opts.counter = Counter(template, tiling, tok_dir)
        how = f"exact (tokenizer of {tok_dir})" if tok_dir else \
            f"ESTIMATED: no local tokenizer for {model or 'the model'} (pass --tokenizer DIR for exact counts)"
        note = (f"tokens: {how}; template {template}; {tiling.max_num} tiles max x "
                f"{tiling.tokens_per_tile} tokens ({tiling.tile}px)"
                + (f"; max_length {max_length}" if max_length else "; no max_length given"))
    return Setup(opts, files or [], note)
