"""Generation through swift's inference engines, with the run's own settings re-applied.

swift restores neither max_length nor the InternVL tiling variables from a checkpoint, so a model
trained with MAX_NUM=6 would be inferred with 12 tiles. The Predictor sets them before swift builds
its template (env knobs, the -HF plugin) and sets the template's max_length afterwards.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .checkpoint import CheckpointInfo

BACKENDS = ("transformers", "vllm", "lmdeploy")


class BackendError(Exception):
    """The backend cannot run this checkpoint here (message says what to do)."""


@dataclass
class Answer:
    text: str
    prompt_tokens: int | None


def apply_settings(info: CheckpointInfo) -> None:
    """Environment and swift patches a run's knobs need; call before any swift template is built."""
    os.environ.update(info.env)
    if info.template == "internvl_hf" and "max_num" in info.knobs:
        from ..train import swift_plugin  # noqa: F401 - import patches swift's internvl_hf template


def _engine_class():
    """swift's TransformersEngine, with the remote-code model's GenerationMixin restored before the
    adapter is applied (a second load in one process, as --compare-base does, would lose it)."""
    from swift.infer_engine import TransformersEngine

    from ..models.model_loading import ensure_generation_mixin

    class Engine(TransformersEngine):
        def _get_model_processor(self, *args: Any, **kwargs: Any):
            model, processor = super()._get_model_processor(*args, **kwargs)
            ensure_generation_mixin(model)
            return model, processor
    return Engine


class Predictor:
    def __init__(self, info: CheckpointInfo, *, model: str, adapter: str | None, backend: str = "transformers",
                 max_new_tokens: int = 256):
        apply_settings(info)
        dtype = (info.recipe or {}).get("torch_dtype")
        kwargs: dict[str, Any] = dict(model_type=info.model_type, template_type=info.template)
        try:
            if backend == "transformers":
                import torch
                self.engine = _engine_class()(model, adapters=[adapter] if adapter else None,
                                                 torch_dtype=getattr(torch, dtype) if dtype else None, **kwargs)
            elif backend == "vllm":
                from swift.infer_engine import VllmEngine
                self.engine = VllmEngine(model, adapters=[adapter] if adapter else None, **kwargs)
            else:
                if adapter:
                    raise BackendError("lmdeploy cannot apply a LoRA adapter: merge first "
                                       "(python export.py CHECKPOINT --merge) and infer the merged directory")
                from swift.infer_engine import LmdeployEngine
                self.engine = LmdeployEngine(model, **kwargs)
        except ImportError as e:
            raise BackendError(f"backend {backend!r} is not installed here ({e}); "
                               f"pip install {backend}, or use --backend transformers") from None
        if info.max_length:
            self.engine.template.max_length = info.max_length
        self.max_new_tokens = max_new_tokens

    def problem(self, messages: list[dict[str, str]], images: list[str], objects: dict | None = None,
                videos: list[str] = ()) -> str | None:
        """Why swift cannot run this request (too long for max_length, an image that does not load), or None.
        It is swift's own template that encodes it, so what passes here runs."""
        try:
            self.engine.template.encode(_request(messages, images, objects, videos))
        except Exception as e:  # noqa: BLE001 - the template raises many types; each is a reason to skip the row
            text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            return f"{type(e).__name__}: {text}"
        return None

    def answer(self, batch: list[tuple], progress: bool = False) -> list[Answer]:
        """Greedy answers for (messages ending with a user turn, image paths[, grounding objects[, videos]])."""
        from swift.infer_engine import RequestConfig
        requests = [_request(*item) for item in batch]
        config = RequestConfig(max_tokens=self.max_new_tokens, temperature=0)
        out = []
        for resp in self.engine.infer(requests, config, use_tqdm=progress):
            usage = getattr(resp, "usage", None)
            out.append(Answer(resp.choices[0].message.content or "", getattr(usage, "prompt_tokens", None)))
        return out


def _request(messages: list[dict[str, str]], images: list[str], objects: dict | None = None, videos: list[str] = ()):
    """swift's request with the row's videos; a grounding row's objects go along (copied: the template normalises
    them in place), so swift itself writes the question's <ref-object> as it did in training."""
    import copy

    from swift.infer_engine import InferRequest
    return InferRequest(messages=[dict(m) for m in messages], images=list(images), videos=list(videos),
                        objects=copy.deepcopy(objects) if objects else {})
