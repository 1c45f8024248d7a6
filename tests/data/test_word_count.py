"""The word-cached counter equals the tokenizer's own encode, on random and adversarial text."""
from __future__ import annotations

import random

from data_tools.word_count import WordCounter

ALPHABET = list("abcXYZ  \n\t\r0123456789.,;:!?'\"()[]{}\\^_+-=/<>|") + ["'s", "'ll", "é", "é", "ﬁ", "公式",
                                                                       "¾", "😀", "\u00a0", "\u200b",
                                                                       "\x0b", "\x0c", "\x1c", "\x1f", "\x00",
                                                                       "\u2003", "\u3000", "\u0301", "K", "S"]
SPECIALS = ["<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>", "<|endoftext|>", "<image>"]


def test_word_counter_matches_encode(tiny_model):
    wc = WordCounter(tiny_model / "tokenizer.json")
    assert wc.fast
    rng = random.Random(0)
    for _ in range(6000):
        parts = [rng.choice(ALPHABET) for _ in range(rng.randint(0, 40))]
        for _ in range(rng.randint(0, 3)):
            parts.insert(rng.randint(0, len(parts)), rng.choice(SPECIALS))
        text = "".join(parts)
        assert wc.count(text) == wc._encode_len(text), repr(text)
    # a second pass hits the word cache and must not change anything
    text = "Using LaTeX to perform OCR on image 12. x_{5}^{2} <|im_end|>\n"
    assert wc.count(text) == wc.count(text) == wc._encode_len(text)
