"""LaTeX answers as formulas: converted to MathML when the page is built (latex2mathml), which the browser
draws natively, so the report needs no script, font or server to show them.

Model output is untrusted text: the MathML is parsed back and kept only when every element is a MathML
element and no attribute can run or fetch anything; otherwise the answer is shown as source only.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET

_LATEX = re.compile(r"\\[A-Za-z]+|[\^_]\{")
_NS = "{http://www.w3.org/1998/Math/MathML}"
_ELEMENTS = {"math", "mrow", "mi", "mn", "mo", "ms", "mtext", "mspace", "msup", "msub", "msubsup", "mfrac",
             "msqrt", "mroot", "mstyle", "merror", "mpadded", "mphantom", "mfenced", "menclose", "munder", "mover",
             "munderover", "mtable", "mtr", "mtd", "mlabeledtr", "mmultiscripts", "mprescripts", "none",
             "semantics", "annotation"}
_ATTRIBUTES = {"display", "mathvariant", "stretchy", "fence", "separator", "lspace", "rspace", "columnalign",
               "rowalign", "columnlines", "rowlines", "columnspacing", "rowspacing", "linethickness", "width",
               "height", "depth", "accent", "accentunder", "movablelimits", "largeop", "symmetric", "notation",
               "open", "close", "separators", "minsize", "maxsize", "scriptlevel", "displaystyle", "form",
               "xmlns", "encoding", "frame", "framespacing", "equalrows", "equalcolumns", "align", "class"}


def looks_like_latex(text: str) -> bool:
    """A reference written in LaTeX (a command like \\frac, or a braced super/subscript)."""
    return bool(_LATEX.search(text or ""))


def to_mathml(latex: str) -> str | None:
    """The formula as safe MathML markup, or None when it does not parse (a broken prediction)."""
    from latex2mathml.converter import convert
    try:
        markup = convert(latex)
        root = ET.fromstring(markup)
    except Exception:  # noqa: BLE001 - latex2mathml raises many types for malformed input: all mean "not a formula"
        return None
    for node in root.iter():
        tag = node.tag.removeprefix(_NS)
        if tag not in _ELEMENTS or any(a.split("}")[-1] not in _ATTRIBUTES for a in node.attrib):
            return None
    ET.register_namespace("", _NS[1:-1])
    return ET.tostring(root, encoding="unicode")
