"""Exact token counts at word speed for byte-level BPE tokenizers of the Qwen2 shape.

A BPE tokenizer never merges across pre-tokens: the count of a text is the number of added tokens
in it plus, for every pre-token ("word") of the text between them, the length of that word's BPE.
Words repeat across a dataset far more than texts do, so caching the BPE length per word replaces
almost every call into the tokenizer by a regex split and dict lookups. Used only when the
tokenizer's pipeline is exactly the one reproduced here (added tokens, NFC, an isolating regex
split, byte level, BPE); anything else is counted by the tokenizer itself. A randomized test checks
equality with `Tokenizer.encode`.
"""
from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path
from typing import Any

WORD_CACHE = 500_000
PART_CACHE_MAX_LEN = 32      # only short parts ("\n", "assistant\n") repeat; unique text is not kept
# Qwen2's split pattern, and the same pattern restricted to ASCII input for the stdlib `re` engine
# (2x faster than `regex` on \p{..} classes). \s is spelled out: re's \s also matches \x1c-\x1f.
QWEN2_PATTERN = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"""
                 r"""\s*[\r\n]+|\s+(?!\S)|\s+""")
_WS = r"[ \t\n\v\f\r]"
QWEN2_ASCII = (r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]| ?[^ \t\n\v\f\rA-Za-z0-9]+[\r\n]*|"""
               + f"{_WS}*[\\r\\n]+|{_WS}+(?![^ \\t\\n\\v\\f\\r])|{_WS}+")


def _supported(spec: dict[str, Any]) -> str | None:
    """The split regex when the pipeline has the reproducible shape, else None."""
    norm, pre, model = spec.get("normalizer"), spec.get("pre_tokenizer") or {}, spec.get("model") or {}
    if norm not in (None, {"type": "NFC"}) or model.get("type") != "BPE" or model.get("dropout"):
        return None
    steps = pre.get("pretokenizers") if pre.get("type") == "Sequence" else None
    if not steps or len(steps) != 2:
        return None
    split, byte = steps
    if (split.get("type") != "Split" or split.get("behavior") != "Isolated" or split.get("invert")
            or "Regex" not in (split.get("pattern") or {})):
        return None
    if byte.get("type") != "ByteLevel" or byte.get("use_regex") or byte.get("add_prefix_space"):
        return None
    if any(t.get("normalized") or t.get("lstrip") or t.get("rstrip") or t.get("single_word")
           for t in spec.get("added_tokens") or []):
        return None
    return split["pattern"]["Regex"]


class WordCounter:
    def __init__(self, tokenizer_json: Path):
        import regex
        from tokenizers import Tokenizer

        spec = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))
        self._tok = Tokenizer.from_file(str(tokenizer_json))
        pattern = _supported(spec)
        self.fast = pattern is not None
        self._words: dict[str, int] = {}
        self._parts: dict[str, int] = {}
        if self.fast:
            added = sorted({t["content"] for t in spec.get("added_tokens") or []}, key=len, reverse=True)
            self._added = set(added)
            self._added_re = regex.compile("(" + "|".join(regex.escape(a) for a in added) + ")") if added else None
            self._split = regex.compile(pattern)
            self._ascii_split = re.compile(QWEN2_ASCII) if pattern == QWEN2_PATTERN else None
            self._nfc = spec.get("normalizer") is not None

    def _encode_len(self, text: str) -> int:
        return len(self._tok.encode(text, add_special_tokens=False).ids)

    def count(self, text: str) -> int:
        if not self.fast:
            return self._encode_len(text)
        total = 0
        parts_seen = self._parts
        parts = self._added_re.split(text) if self._added_re is not None else [text]
        for part in parts:
            if not part:
                continue
            if part in self._added:
                total += 1
                continue
            n = parts_seen.get(part)
            if n is None:
                n = self._count_part(part)
                if len(part) <= PART_CACHE_MAX_LEN:
                    if len(parts_seen) >= WORD_CACHE:
                        parts_seen.clear()
                    parts_seen[part] = n
            total += n
        return total

    def _count_part(self, part: str) -> int:
        """Tokens of text with no added token in it: the sum of its words' BPE lengths."""
        if self._ascii_split is not None and part.isascii():
            pieces = self._ascii_split.findall(part)
        else:
            if self._nfc and not part.isascii():
                part = unicodedata.normalize("NFC", part)
            pieces = self._split.findall(part)
        if sum(map(len, pieces)) != len(part):     # characters the regex leaves out: Isolated keeps them
            pieces = self._isolated(part)
        try:
            return sum(map(self._words.__getitem__, pieces))
        except KeyError:
            return sum(map(self._word, pieces))

    def _isolated(self, part: str) -> list[str]:
        pieces, pos = [], 0
        for m in self._split.finditer(part):
            if m.start() > pos:
                pieces.append(part[pos:m.start()])
            pieces.append(m.group())
            pos = m.end()
        if pos < len(part):
            pieces.append(part[pos:])
        return pieces

    def _word(self, word: str) -> int:
        n = self._words.get(word)
        if n is None:
            n = self._encode_len(word)
            if len(self._words) >= WORD_CACHE:
                self._words.clear()
            self._words[word] = n
        return n
