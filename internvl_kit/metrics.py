"""Text metrics of predictions against references: exact match, normalized exact match, CER, BLEU."""
from __future__ import annotations

import re
from typing import Any

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


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance over characters (insert, delete, substitute cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def cer(pred: str, ref: str) -> float:
    """Character error rate of one pair: distance / reference length (an empty reference: 0 or 1)."""
    if not ref:
        return 0.0 if not pred else 1.0
    return edit_distance(pred, ref) / len(ref)


def score(preds: list[str], refs: list[str]) -> dict[str, Any]:
    """Corpus metrics: EM and normalized EM as fractions, CER as total edits / total reference
    characters, BLEU (sacrebleu, 0-100)."""
    import sacrebleu

    n = len(refs)
    if n == 0:
        return {"samples": 0}
    edits = sum(edit_distance(p, r) for p, r in zip(preds, refs))
    chars = sum(len(r) for r in refs)
    return {
        "samples": n,
        "exact_match": sum(p == r for p, r in zip(preds, refs)) / n,
        "normalized_exact_match": sum(normalize(p) == normalize(r) for p, r in zip(preds, refs)) / n,
        "cer": edits / chars if chars else float(any(preds)),
        "bleu": sacrebleu.corpus_bleu(preds, [refs]).score,
    }
