"""swift external plugin: make the -HF InternVL template honour MAX_NUM like the original ones do.

swift's internvl_chat templates read MAX_NUM (max tiles per image) from the environment; its
internvl_hf template ignores it and tiles with the processor's own `max_patches`. Loaded by swift
via `--external_plugins` (train.py and infer.py add it when a recipe sets internvl.max_num), this
sets the processor's max_patches from MAX_NUM when the template binds its processor.
"""
import os

from swift.template.templates.internvl import InternvlhfTemplate

_original_init_env_args = InternvlhfTemplate.init_env_args


def _init_env_args(self) -> None:
    _original_init_env_args(self)
    value = os.environ.get("MAX_NUM")
    if value:
        self.processor.image_processor.max_patches = int(value)


if getattr(InternvlhfTemplate.init_env_args, "__module__", None) != __name__:
    InternvlhfTemplate.init_env_args = _init_env_args
