"""Token-length preflight: the exact length swift's template will produce, from text and image headers.

swift encodes a sample as a list of contexts: the system prefix, each round's prompt with the user
text, the response, and the separator/suffix. `<image>` tags become `<img>`, the image tokens,
`</img>\\n`; adjacent text contexts with the same loss weight are merged and tokenized piece by piece.
`Counter` rebuilds exactly those text pieces (merges across pieces change BPE counts, so the pieces
matter) and adds tiles x tokens-per-tile for every image.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from .tiling import num_tiles, tokens_per_tile
from .video import VIDEO_MAX_NUM, VIDEO_SEGMENTS, VideoInfo
from .video import knobs as video_knobs

CHATML = dict(system_prefix="<|im_start|>system\n{{SYSTEM}}<|im_end|>\n",
              prompt="<|im_start|>user\n{{QUERY}}<|im_end|>\n<|im_start|>assistant\n",
              chat_sep="<|im_end|>\n", suffix="<|im_end|>\n", stop="<|im_end|>")
INTERNVL2_5_SYSTEM = ("你是书生·万象，英文名是InternVL，是由上海人工智能实验室、清华大学及多家合作单位"
                      "联合开发的多模态大语言模型。")
# template -> (ChatML pieces, default system); facts of ms-swift 4.6, checked by tests/data/test_token_exactness.py
TEMPLATES: dict[str, tuple[dict[str, str], str | None]] = {
    "internvl_hf": (CHATML, None),
    "internvl2_5": (CHATML, INTERNVL2_5_SYSTEM),
    "internvl3_5": (CHATML, None),
}
HF_TEMPLATES = {"internvl_hf"}
CACHE_SIZE = 16384
IMG_OPEN, IMG_CLOSE = "<img>", "</img>\n"
_TAG = re.compile(r"(<image>|<video>)")
SPECIAL = re.compile(r"<\|im_start\|>|<\|im_end\|>|<\|endoftext\|>|</?img>|<IMG_CONTEXT>")


def estimate_tokens(text: str) -> int:
    """Conservative estimate when no tokenizer is at hand: each special token 1, every 2.5 other ASCII
    characters 1, every non-ASCII character 1. Qwen-family tokenizers average ~4 characters per token
    on English and ~3 on LaTeX, and 1-1.5 per CJK character, so this errs on the long side."""
    specials = len(SPECIAL.findall(text))
    rest = SPECIAL.sub("", text)
    non_ascii = sum(1 for ch in rest if ord(ch) > 127)
    return specials + math.ceil((len(rest) - non_ascii) / 2.5) + non_ascii


def find_tokenizer(model: str | None) -> Path | None:
    """tokenizer.json of a model that is available locally (a directory, or the ModelScope/HF caches)."""
    if not model:
        return None
    candidates = [Path(model).expanduser()]
    ms = os.environ.get("MODELSCOPE_CACHE") or str(Path.home() / ".cache" / "modelscope")
    candidates += [Path(ms) / "models" / model, Path(ms) / "hub" / "models" / model, Path(ms) / "hub" / model]
    hf = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
    candidates += sorted((Path(hf) / "hub" / f"models--{model.replace('/', '--')}" / "snapshots").glob("*"))
    for c in candidates:
        if (c / "tokenizer.json").is_file():
            return c
    return None


@dataclass
class TilingConfig:
    tile: int = 448               # tile edge in pixels
    tokens_per_tile: int = 256
    max_num: int = 12
    min_num: int = 1
    hf: bool = False              # transformers' processor order for tie-breaking (internvl_hf)
    video_segments: int = VIDEO_SEGMENTS      # chat route: frames per video
    video_max_num: int = VIDEO_MAX_NUM        # chat route: tiles per frame (and per image beside a video)

    @classmethod
    def for_model(cls, model_dir: Path | None, template: str, max_num: int | None,
                  input_size: int | None, video_segments: int | None = None,
                  video_max_num: int | None = None) -> "TilingConfig":
        """Tiling of a template; for a local -HF model, its processor config decides tile size and defaults."""
        hf = template in HF_TEMPLATES
        cfg = cls(hf=hf)
        if hf and model_dir is not None:
            proc = _read_json(model_dir / "processor_config.json")
            image_proc = proc.get("image_processor") or _read_json(model_dir / "preprocessor_config.json")
            size = image_proc.get("size") or {}
            cfg.tile = int(size.get("height", cfg.tile))
            cfg.max_num = int(image_proc.get("max_patches", cfg.max_num))
            cfg.min_num = int(image_proc.get("min_patches", cfg.min_num))
            seq = proc.get("image_seq_length") or _read_json(model_dir / "config.json").get("image_seq_length")
            cfg.tokens_per_tile = int(seq) if seq else tokens_per_tile(cfg.tile)
        elif not hf:
            cfg.tile = input_size or cfg.tile
            cfg.tokens_per_tile = tokens_per_tile(cfg.tile)
        if max_num:
            cfg.max_num = max_num
        cfg.video_segments, cfg.video_max_num = video_knobs(video_segments, video_max_num)
        return cfg

    def tiles(self, width: int, height: int, max_num: int | None = None) -> int:
        return num_tiles(width, height, max_num or self.max_num, self.tile, self.hf, self.min_num)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


@dataclass
class Breakdown:
    text: int        # tokens of the message contents
    template: int    # tokens the template adds (role markers, separators, <img></img>)
    image: int       # visual tokens
    tiles: list[int] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.text + self.template + self.image


class Counter:
    """Counts a sample's tokens as swift's template would, with a tokenizer or the estimate."""

    def __init__(self, template: str, tiling: TilingConfig, tokenizer_dir: Path | None = None):
        if template not in TEMPLATES:
            raise ValueError(f"no token rules for template {template!r}; known: {', '.join(TEMPLATES)}")
        self.pieces, self.default_system = TEMPLATES[template]
        self.tiling = tiling
        self.exact = tokenizer_dir is not None
        self._cache: dict[str, int] = {}
        self._count_one: Callable[[str], int] = estimate_tokens
        if tokenizer_dir is not None:
            from .word_count import WordCounter
            self._count_one = WordCounter(tokenizer_dir / "tokenizer.json").count

    def count_texts(self, texts: list[str]) -> int:
        """Tokens of several separately-tokenized texts; template pieces repeat, so results are cached."""
        cache, total = self._cache, 0
        for t in texts:
            n = cache.get(t)
            if n is None:
                n = self._count_one(t)
                if len(cache) >= CACHE_SIZE:     # bounded: unique answers would otherwise grow it forever
                    cache.clear()
                cache[t] = n
            total += n
        return total

    def text_pieces(self, messages: list[dict[str, Any]], n_images: int,
                    video_frames: list[int] = ()) -> tuple[list[str], int]:
        """The text contexts swift tokenizes, and how many image slots they hold (a chat-route video's frames
        are image slots; an -HF video's prompt is its own tokenized pieces). `video_frames`: frames per video."""
        system = None
        if messages and messages[0]["role"] == "system":
            system, messages = messages[0]["content"], messages[1:]
        if system is None:
            system = self.default_system
        contents = [m["content"] for m in messages]
        # per-answer `loss: false` (swift's message-level mask) makes the answer context, not target: it is
        # then tokenized together with the prompt around it
        losses = [0 if m.get("loss") is not None and not m["loss"] else 1 for m in messages]
        # swift prepends missing <image> tags to the first message (tags counted across all, system too)
        for tag, n in (("<image>", n_images), ("<video>", len(video_frames))):
            missing = n - sum(c.count(tag) for c in contents) - (system.count(tag) if system else 0)
            if missing > 0 and contents:
                contents[0] = tag * missing + contents[0]
        p = self.pieces
        stream: list[tuple[str, int]] = []
        if system:
            stream.append((p["system_prefix"].replace("{{SYSTEM}}", system), 0))
        # (query, answer pieces): answers in a row are one response of several pieces (their loss flags differ,
        # else the row was joined), each tokenized with its own loss
        rounds: list[tuple[str, list[tuple[str, int]]]] = []
        for m, text, loss in zip(messages, contents, losses):
            if rounds and m["role"] == "assistant":
                rounds[-1][1].append((text, loss))
            else:
                rounds.append((text, []))
        rounds = [r for r in rounds if r[1]]              # a last question without an answer is not trained
        for i, (query, answers) in enumerate(rounds):
            stream.append((p["prompt"].replace("{{QUERY}}", query), 0))
            stream += answers
            if i < len(rounds) - 1:
                stream.append((p["chat_sep"], 0))
            elif answers and not answers[-1][0].endswith(p["stop"]):   # an answer already ending in the stop
                stream.append((p["suffix"], 1))                         # word gets no suffix
        items: list[tuple[str, int] | None] = []     # None = an image slot (its tokens are not text)
        slots, videos, own = 0, 0, []                # own: an -HF video prompt's pieces, tokenized on their own
        for text, loss in stream:
            for part in (_TAG.split(text) if "<image>" in text or "<video>" in text else (text,)):
                if part == "<image>" and slots < n_images:
                    items += [(IMG_OPEN, 0), None, (IMG_CLOSE, 0)]
                    slots += 1
                elif part == "<video>" and videos < len(video_frames):
                    frames = video_frames[videos]
                    videos += 1
                    if self.tiling.hf:                # one token list: "Frame1: <img>..</img>\nFrame2: ..</img>\n"
                        items.append(None)
                        own += [f"Frame{i + 1}: " if i == 0 else f"\nFrame{i + 1}: " for i in range(frames)]
                        own += ["<img>", "</img>"] * frames + ["\n"]
                    else:                             # the frames become images, each "Frame{i}: " + image
                        for i in range(frames):
                            items += [(f"Frame{i + 1}: ", 0), (IMG_OPEN, 0), None, (IMG_CLOSE, 0)]
                        slots += frames
                elif part:
                    items.append((part, loss))
        out: list[str] = []
        cur: list[str] = []
        cur_loss = 0
        for item in items:
            if item is None or (cur and item[1] != cur_loss):
                if cur:
                    out.append("".join(cur))
                cur = []
            if item is not None:
                cur.append(item[0])
                cur_loss = item[1]
        if cur:
            out.append("".join(cur))
        return out + own, slots

    def _tiles(self, image_sizes: list[tuple[int, int]], max_num: int | None,
               videos: list[VideoInfo]) -> tuple[list[int], list[int]]:
        """(tiles per image or chat-route frame, frames per video). On the chat route a sample with a video
        tiles its images and its VIDEO_SEGMENTS frames with VIDEO_MAX_NUM; on -HF a frame is one tile."""
        if not videos:
            return [self.tiling.tiles(w, h, max_num) for w, h in image_sizes], []
        if self.tiling.hf:
            return [self.tiling.tiles(w, h, max_num) for w, h in image_sizes] + [1] * sum(v.frames for v in videos), \
                [v.frames for v in videos]
        segments, video_max = self.tiling.video_segments, self.tiling.video_max_num
        frames = [self.tiling.tiles(v.width, v.height, video_max) for v in videos for _ in range(segments)]
        return [self.tiling.tiles(w, h, video_max) for w, h in image_sizes] + frames, [segments] * len(videos)

    def total(self, messages: list[dict[str, Any]], image_sizes: list[tuple[int, int]],
              max_num: int | None = None, videos: list[VideoInfo] = ()) -> int:
        """Exactly len(input_ids) of swift's encode for this sample."""
        tiles, frames = self._tiles(image_sizes, max_num, list(videos))
        pieces, _ = self.text_pieces(messages, len(image_sizes), frames)
        return self.count_texts(pieces) + sum(tiles) * self.tiling.tokens_per_tile

    def count(self, messages: list[dict[str, Any]], image_sizes: list[tuple[int, int]],
              max_num: int | None = None, videos: list[VideoInfo] = ()) -> Breakdown:
        """total() split into text / template / image tokens (for reports; costs a second tokenization)."""
        tiles, frames = self._tiles(image_sizes, max_num, list(videos))
        pieces, _ = self.text_pieces(messages, len(image_sizes), frames)
        text_total = self.count_texts(pieces)
        content = self.count_texts([m["content"].replace("<image>", "").replace("<video>", "") for m in messages])
        return Breakdown(text=content, template=text_total - content,
                         image=sum(tiles) * self.tiling.tokens_per_tile, tiles=tiles)
