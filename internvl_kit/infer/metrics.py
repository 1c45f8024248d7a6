"""Text metrics of predictions against references: exact match, normalized exact match, CER, chrF, BLEU.

Which to read: exact match for short closed answers (classes, colours, numbers); normalized exact match
for LaTeX OCR (spacing-insensitive); CER for OCR and transcription of any length; chrF for short free
text (character n-grams, meaningful from one word up); BLEU only for sentence-length answers: its 4-gram
precision is 0 for answers under four words, so it is reported only when references average >= 4 words.
Answers with boxes (grounding) also get mean IoU and Acc@0.5, or precision and recall at IoU 0.5 (boxes.py).
"""
from __future__ import annotations

import re
from typing import Any

from . import boxes

# LaTeX spacing commands that change layout, not content.
_LATEX_SPACE = re.compile(r"\\(?:,|;|:|!|\s|quad\b|qquad\b|enspace\b|thinspace\b)|~")
_AROUND_SYMBOL = re.compile(r"\s*([^\w\s])\s*")
_WS = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Whitespace- and LaTeX-spacing-insensitive form: spacing commands dropped, runs of whitespace
    collapsed, and no space next to a symbol (`x ^ { 2 }` == `x^{2}`, `a  b` == `a b`)."""
    text = _LATEX_SPACE.sub(" ", text)
    text = _AROUND_SYMBOL.sub(r"\1", text)
    return _WS.sub(" ", text).strip()


BLEU_MIN_WORDS = 4


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over characters (insert, delete, substitute cost 1), in C (rapidfuzz)."""
    from rapidfuzz.distance import Levenshtein
    return Levenshtein.distance(a, b)


def cer(pred: str, ref: str) -> float:
    """Character error rate of one pair: distance / reference length (an empty reference: 0 or 1)."""
    if not ref:
        return 0.0 if not pred else 1.0
    return edit_distance(pred, ref) / len(ref)


def score(preds: list[str], refs: list[str]) -> dict[str, Any]:
    """Corpus metrics: EM and normalized EM as fractions, CER as total edits / total reference
    characters, chrF (sacrebleu, 0-100), and BLEU (0-100) when references average >= 4 words, else None."""
    import sacrebleu

    n = len(refs)
    if n == 0:
        return {"samples": 0}
    edits = sum(edit_distance(p, r) for p, r in zip(preds, refs))
    chars = sum(len(r) for r in refs)
    words = sum(len(r.split()) for r in refs) / n
    return {
        "samples": n,
        "exact_match": sum(p == r for p, r in zip(preds, refs)) / n,
        "normalized_exact_match": sum(normalize(p) == normalize(r) for p, r in zip(preds, refs)) / n,
        "cer": edits / chars if chars else float(any(preds)),
        "chrf": sacrebleu.corpus_chrf(preds, [refs]).score,
        "bleu": sacrebleu.corpus_bleu(preds, [refs]).score if words >= BLEU_MIN_WORDS else None,
        "reference_words": words,
        **boxes.score(preds, refs),         # IoU, Acc@0.5, precision/recall when the references hold boxes
    }
