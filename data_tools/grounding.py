"""Grounding rows: `objects` ({"ref": [...], "bbox": [[x1, y1, x2, y2] or [x, y], ...], "bbox_type": "real" |
"norm1", "image_id": [...]}) with `<ref-object>` / `<bbox>` tags in the text, checked as swift reads them.

What swift 4.6 does (measured on its loader and template, tests/data/test_grounding_parity.py):
- the loader drops the row when `bbox` is missing or a box has other than 2 or 4 numbers (and `objects` given
  as a JSON string, unless other rows of the file give it as a mapping), and swaps x1 > x2 (and y1 > y2);
- the template normalises each box to InternVL's 0-1000 grid by the size of its image (`image_id`, default 0)
  as stored: EXIF orientation is not applied, so the size is the file's own. `norm1` boxes are fractions.
  A row without images keeps its numbers as pyarrow parsed them (refused here: they are on no grid). An
  `image_id` beyond the images fails the encode;
- `<ref-object>` becomes `<ref>REF</ref>`, `<bbox>` becomes `<box>[[x1, y1, x2, y2]]</box>`, in order over
  the whole conversation; tags beyond the lists stay as literal text, objects beyond the tags are dropped.
"""
from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any, Callable

REF_TAG, BOX_TAG = "<ref-object>", "<bbox>"
CODE = "grounding"


def objects_of(row: dict[str, Any]) -> Any:
    """The row's objects as swift's loader reads them (a JSON string parsed), or None."""
    objects = row.get("objects")
    if isinstance(objects, str):
        try:
            return json.loads(objects)
        except ValueError:
            return objects
    return objects


def has_grounding(row: dict[str, Any]) -> bool:
    if row.get("objects") is not None:
        return True
    return any(isinstance(m.get("content"), str) and (REF_TAG in m["content"] or BOX_TAG in m["content"])
               for m in row.get("messages") or [] if isinstance(m, dict))


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def loader_problem(objects: Any) -> str | None:
    """Why swift's loader drops the row for its objects (None: it keeps it)."""
    if not isinstance(objects, dict):
        return f"`objects` must be a mapping (or its JSON string), got {type(objects).__name__}; swift drops the row"
    if "bbox" not in objects:
        return "`objects` has no `bbox` list; swift drops the row; fix: \"bbox\": [[x1, y1, x2, y2], ...]"
    boxes = objects["bbox"]
    if not isinstance(boxes, list):
        return f"`objects.bbox` must be a list of boxes, got {type(boxes).__name__}; swift drops the row"
    for i, box in enumerate(boxes):
        if not isinstance(box, list) or len(box) not in (2, 4) or not all(_number(v) for v in box):
            return (f"objects.bbox[{i}] is {json.dumps(box)[:60]}: a box is [x1, y1, x2, y2] and a point [x, y] of "
                    f"numbers; swift drops the row")
    return None


def problems(row: dict[str, Any], sizes: list[tuple[int, int]], emit: Callable[[str, str], None]) -> None:
    """Every grounding problem of a row whose images measured `sizes` (one `grounding` error each)."""
    objects = objects_of(row)
    text = [m["content"] for m in row["messages"]]
    refs_tags = sum(t.count(REF_TAG) for t in text)
    box_tags = sum(t.count(BOX_TAG) for t in text)
    if objects is None:
        if refs_tags or box_tags:
            emit(CODE, f"{refs_tags} <ref-object> and {box_tags} <bbox> tag(s) but no `objects`: swift keeps the "
                       f"tags as literal text; fix: add \"objects\": {{\"ref\": [...], \"bbox\": [...]}}")
        return
    if isinstance(row.get("objects"), str):
        emit(CODE, "`objects` is a JSON string: swift's loader drops the row unless other rows of the file give "
                   "`objects` as a mapping; fix: write it as a JSON object")
        return
    why = loader_problem(objects)
    if why:
        emit(CODE, why)
        return
    if not sizes and objects["bbox"]:
        emit(CODE, "boxes but no image: swift writes the numbers as they are (not on InternVL's 0-1000 grid of an "
                   "image); fix: add the image the boxes are on")
        return
    refs, boxes = objects.get("ref") or [], objects["bbox"]
    if isinstance(refs, str):
        emit(CODE, f"objects.ref is the string {refs!r}: swift reads its characters as the refs; fix: a list, "
                   f"[{json.dumps(refs)}]")
        refs = list(refs)
    for name, tags, items, tag in (("ref", refs_tags, refs, REF_TAG), ("bbox", box_tags, boxes, BOX_TAG)):
        if tags != len(items):
            extra = (f"swift keeps the last {tags - len(items)} {tag} as literal text" if tags > len(items)
                     else f"swift ignores the last {len(items) - tags} {name} entr{'y' if len(items) - tags == 1 else 'ies'}")
            emit(CODE, f"{tags} {tag} tag(s) but {len(items)} objects.{name}: {extra}; fix: one tag per entry")
    ids = objects.get("image_id") or []
    ids = ids + [0] * (len(boxes) - len(ids)) if isinstance(ids, list) else ids
    if not isinstance(ids, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in ids):
        emit(CODE, f"objects.image_id must be a list of image indexes, got {json.dumps(objects.get('image_id'))[:60]}")
        return
    kind = objects.get("bbox_type") or "real"
    if kind not in ("real", "norm1"):
        emit(CODE, f"objects.bbox_type {kind!r}: swift knows 'real' (pixels, the default) and 'norm1' (0-1)")
        return
    for i, (box, image) in enumerate(zip(boxes, ids)):
        where = f"objects.bbox[{i}] {json.dumps(box)}"
        if sizes and not 0 <= image < len(sizes):
            emit(CODE, f"{where}: image_id {image} but the row has {len(sizes)} image(s); swift fails on the row")
            continue
        if len(box) == 4 and (box[0] > box[2] or box[1] > box[3]):
            emit(CODE, f"{where}: x1 > x2 or y1 > y2; swift swaps them silently; fix: [x1, y1, x2, y2] with "
                       f"the top-left corner first")
        if kind == "norm1":
            if any(not 0 <= v <= 1 for v in box):
                emit(CODE, f"{where}: bbox_type norm1 but a value outside 0-1; fix: fractions of the image size, "
                           f"or bbox_type real for pixels")
            continue
        if not sizes:
            continue
        width, height = sizes[image]
        if all(0 <= v <= 1 for v in box) and any(isinstance(v, float) and v not in (0.0, 1.0) for v in box) \
                and max(width, height) > 1:
            emit(CODE, f"{where}: pixel boxes (bbox_type real, the default) that look normalised (all within 0-1) "
                       f"on a {width}x{height} image; fix: \"bbox_type\": \"norm1\"")
            continue
        xs, ys = box[0::2], box[1::2]
        if any(not 0 <= x <= width for x in xs) or any(not 0 <= y <= height for y in ys):
            emit(CODE, f"{where}: outside its {width}x{height} image (image {image}, the size swift reads: EXIF "
                       f"orientation is not applied); fix: boxes in the file's own pixels")


def render(messages: list[dict[str, Any]], objects: Any, sizes: list[tuple[int, int]]) -> list[dict[str, Any]]:
    """The messages with the tags replaced as swift's InternVL templates replace them (for the token count)."""
    if not isinstance(objects, dict) or loader_problem(objects):
        return messages
    refs = objects.get("ref") or []
    refs = list(refs) if isinstance(refs, str) else refs
    boxes = [_normalised(box, i, objects, sizes) for i, box in enumerate(objects["bbox"])]
    state = {"ref": 0, "box": 0}

    def replace(text: str) -> str:
        out = []
        for part in _split(text):
            if part == REF_TAG and state["ref"] < len(refs):
                out.append(f"<ref>{refs[state['ref']]}</ref>")
                state["ref"] += 1
            elif part == BOX_TAG and state["box"] < len(boxes):
                out.append(f"<box>[{boxes[state['box']]}]</box>")
                state["box"] += 1
            else:
                out.append(part)
        return "".join(out)

    return [dict(m, content=replace(m["content"])) if REF_TAG in m["content"] or BOX_TAG in m["content"] else m
            for m in messages]


_TAGS = re.compile(f"({re.escape(REF_TAG)}|{re.escape(BOX_TAG)})")


def _split(text: str) -> list[str]:
    return _TAGS.split(text)


def _normalised(box: list[float], index: int, objects: dict[str, Any], sizes: list[tuple[int, int]]) -> list:
    """swift's loader order (x1 <= x2, y1 <= y2), then its template's 0-1000 grid when the row has images."""
    box = list(box)
    if len(box) == 4:
        box[0], box[2] = min(box[0], box[2]), max(box[0], box[2])
        box[1], box[3] = min(box[1], box[3]), max(box[1], box[3])
    if not sizes:
        return box
    ids = objects.get("image_id") or []
    image = ids[index] if index < len(ids) else 0
    width, height = (1, 1) if (objects.get("bbox_type") or "real") == "norm1" else sizes[image]
    return [int(round(v / (width if i % 2 == 0 else height) * 1000)) for i, v in enumerate(box)]


# -- drawing: the boxes on the image, in the file's own pixels (what swift normalises and the model sees) ------
REFERENCE, PREDICTED = (30, 170, 60), (200, 30, 200)     # green: what the data says; magenta: what the model said


def pixel_boxes(row: dict[str, Any], sizes: list[tuple[int, int]]) -> list[tuple[int, str, tuple[float, ...]]]:
    """(image index, label, (x1, y1, x2, y2) in pixels) of each 4-number box of a row's objects."""
    objects = objects_of(row)
    if not isinstance(objects, dict) or loader_problem(objects) or not sizes:
        return []
    refs = objects.get("ref") or []
    ids = objects.get("image_id") if isinstance(objects.get("image_id"), list) else []
    norm = (objects.get("bbox_type") or "real") == "norm1"
    out = []
    for i, box in enumerate(objects["bbox"]):
        image = ids[i] if i < len(ids) else 0
        if len(box) != 4 or not 0 <= image < len(sizes):
            continue
        w, h = sizes[image] if norm else (1, 1)
        x1, y1, x2, y2 = box[0] * w, box[1] * h, box[2] * w, box[3] * h
        label = str(refs[i]) if isinstance(refs, list) and i < len(refs) else ""
        out.append((image, label, (min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2))))
    return out


def draw(image: str | Path, boxes: list[tuple[str, tuple[float, ...], tuple[int, int, int]]], out: Path,
         min_side: int = 320) -> Path:
    """The image with each (label, pixel box, colour) drawn, upscaled to at least `min_side` px so that small
    images stay legible; written atomically as PNG."""
    import io

    from PIL import Image, ImageDraw

    from .fileio import atomic_write_bytes
    with Image.open(image) as im:
        im = im.convert("RGB")
    scale = max(1.0, min_side / max(1, min(im.size)))
    if scale > 1:
        im = im.resize((round(im.width * scale), round(im.height * scale)), Image.NEAREST)
    pen = ImageDraw.Draw(im)
    for label, (x1, y1, x2, y2), colour in boxes:
        rect = (x1 * scale, y1 * scale, x2 * scale, y2 * scale)
        pen.rectangle(rect, outline=colour, width=max(2, round(scale)))
        if label:
            try:
                tw = pen.textlength(label)
                pen.rectangle((rect[0], max(0, rect[1] - 12), rect[0] + tw + 4, max(12, rect[1])), fill=colour)
                pen.text((rect[0] + 2, max(0, rect[1] - 12)), label, fill=(255, 255, 255))
            except (UnicodeError, OSError):        # a label the default font cannot write: the box alone
                pass
    buf = io.BytesIO()
    im.save(buf, "PNG")
    atomic_write_bytes(out, buf.getvalue())
    return out
