"""Detection and referring datasets into grounding rows (`objects` with `<ref-object>`/`<bbox>`, pixel boxes):

coco:    COCO detection JSON (images, annotations with [x, y, w, h] boxes, categories). One row per image
         (every object named and boxed in the answer), or with --per category one row per image and category
         (the question names the category, the answer boxes each instance)
refcoco: RefCOCO's refs (as JSON: ref_id, ann_id, image_id, split, sentences) with its COCO instances file
         (--instances): one referring row per sentence
odvg:    ODVG JSONL (filename, width, height, and detection.instances or grounding.regions, [x1, y1, x2, y2])

Boxes stay in the image's pixels (bbox_type real): swift normalises them to InternVL's grid by the size it reads.
What cannot be carried is counted and reported: crowd annotations, segmentation masks, images without objects.
"""
from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable, Iterator

from .context import UsageError

DETECT_PROMPT = "Detect every object in the image."
FIND_PROMPT = "Find every <ref-object>."
REFER_PROMPT = "Where is <ref-object>?"
GROUND_PROMPT = "Locate the phrases of this caption: {caption}"

Row = tuple[str, int | str, Any, set[str]]          # (where, position, row or Skip, fields not carried)


def _load(path: Path) -> Any:
    if path.suffix in (".p", ".pkl", ".pickle"):
        raise UsageError(f"{path}: a pickle; convert does not load pickles (loading one runs code). Write it "
                         f"as JSON first, e.g. python -c \"import pickle, json; json.dump(pickle.load(open('{path}', "
                         f"'rb')), open('refs.json', 'w'))\" (only for a file you trust)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"{path}: cannot read: {e}") from None
    except ValueError as e:
        raise UsageError(f"{path}: not JSON ({e})") from None


def _xyxy(box: Any, where: str) -> list[float]:
    """COCO's [x, y, width, height] as [x1, y1, x2, y2]."""
    if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, (int, float)) for v in box)):
        raise ValueError(f"{where}: bbox {json.dumps(box)[:60]} is not [x, y, width, height]")
    x, y, w, h = box
    return [x, y, x + w, y + h]


def _row(image: str, question: str, answer: str, refs: list[str], boxes: list[list[float]]) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": f"<image>{question}"}, {"role": "assistant", "content": answer}],
            "images": [image], "objects": {"ref": refs, "bbox": boxes}}


class _Coco:
    """A COCO instances file indexed by image: (file name, [(category name, xyxy box, annotation)])."""

    def __init__(self, path: Path):
        data = _load(path)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list) or \
                not isinstance(data.get("annotations"), list):
            raise UsageError(f"{path}: not a COCO instances file (needs `images` and `annotations` lists)")
        self.path = path
        self.names = {c["id"]: str(c.get("name", c["id"])) for c in data.get("categories") or [] if "id" in c}
        self.images = {im["id"]: im for im in data["images"] if isinstance(im, dict) and "id" in im}
        self.by_image: dict[Any, list[dict[str, Any]]] = defaultdict(list)
        self.by_id: dict[Any, dict[str, Any]] = {}
        for ann in data["annotations"]:
            if isinstance(ann, dict):
                self.by_image[ann.get("image_id")].append(ann)
                self.by_id[ann.get("id")] = ann


def coco(path: Path, paths: Callable[..., str], args: argparse.Namespace, skip: type[Exception]) -> Iterator[Row]:
    index = _Coco(path)
    for n, (image_id, image) in enumerate(index.images.items(), 1):
        where = f"images[{n - 1}] (id {image_id})"
        anns = index.by_image.get(image_id, [])
        crowd = [a for a in anns if a.get("iscrowd")]
        lost = {"annotations[].segmentation"} if any(a.get("segmentation") for a in anns) else set()
        lost |= {"annotations[] with iscrowd 1"} if crowd else set()
        objects = []
        try:
            file = paths(str(image.get("file_name", "")))
            for a in anns:
                if not a.get("iscrowd"):
                    objects.append((index.names.get(a.get("category_id"), str(a.get("category_id"))),
                                    _xyxy(a.get("bbox"), f"annotation {a.get('id')}")))
        except (skip, ValueError) as e:
            yield str(path), where, e if isinstance(e, skip) else skip(str(e)), lost
            continue
        if not objects:
            yield str(path), where, skip("an image without objects (nothing to ground)"), lost
            continue
        objects.sort(key=lambda o: (o[0], o[1][1], o[1][0]))          # by category, then top to bottom
        if args.per == "category":
            by_name: dict[str, list] = defaultdict(list)
            for name, box in objects:
                by_name[name].append(box)
            for name, boxes in by_name.items():
                yield str(path), f"{where} {name}", _row(file, args.prompt or FIND_PROMPT,
                                                         "\n".join("<bbox>" for _ in boxes), [name], boxes), lost
        else:
            yield str(path), where, _row(file, args.prompt or DETECT_PROMPT,
                                         "\n".join("<ref-object><bbox>" for _ in objects),
                                         [o[0] for o in objects], [o[1] for o in objects]), lost


def refcoco(path: Path, paths: Callable[..., str], args: argparse.Namespace, skip: type[Exception]) -> Iterator[Row]:
    if not args.instances:
        raise UsageError("--from refcoco needs --instances INSTANCES.json (the COCO file its refs point into)")
    refs = _load(path)
    if not isinstance(refs, list):
        raise UsageError(f"{path}: RefCOCO refs are a list of {{ref_id, ann_id, image_id, sentences}}")
    index = _Coco(args.instances)
    for n, ref in enumerate(refs, 1):
        where = f"refs[{n - 1}]"
        if not isinstance(ref, dict):
            yield str(path), where, skip("not a ref object"), set()
            continue
        if args.split and ref.get("split") != args.split:
            continue
        try:
            ann = index.by_id.get(ref.get("ann_id"))
            image = index.images.get(ref.get("image_id"))
            if ann is None or image is None:
                raise skip(f"ann_id {ref.get('ann_id')} / image_id {ref.get('image_id')} not in {args.instances.name}")
            file = paths(str(image.get("file_name", "")))
            box = _xyxy(ann.get("bbox"), f"annotation {ann.get('id')}")
        except (skip, ValueError) as e:
            yield str(path), where, e if isinstance(e, skip) else skip(str(e)), set()
            continue
        for k, sent in enumerate(ref.get("sentences") or []):
            text = sent.get("sent") or sent.get("raw") if isinstance(sent, dict) else sent
            if isinstance(text, str) and text.strip():
                yield str(path), f"{where} sentence {k}", _row(file, args.prompt or REFER_PROMPT, "<bbox>",
                                                               [text.strip()], [box]), set()


def odvg(path: Path, paths: Callable[..., str], args: argparse.Namespace, skip: type[Exception]) -> Iterator[Row]:
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                file = paths(str(rec["filename"]))
                if isinstance(rec.get("detection"), dict):
                    items = [(str(i.get("category", i.get("label"))), i["bbox"])
                             for i in rec["detection"].get("instances") or []]
                    question = args.prompt or DETECT_PROMPT
                elif isinstance(rec.get("grounding"), dict):
                    items = [(str(r.get("phrase")), r["bbox"]) for r in rec["grounding"].get("regions") or []]
                    question = args.prompt or GROUND_PROMPT.format(caption=rec["grounding"].get("caption", ""))
                else:
                    raise skip("neither `detection` nor `grounding`")
                for _, box in items:
                    if not (isinstance(box, list) and len(box) == 4):
                        raise ValueError(f"bbox {json.dumps(box)[:60]} is not [x1, y1, x2, y2]")
            except skip as e:
                yield str(path), n, e, set()
                continue
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                yield str(path), n, skip(f"not an ODVG row: {e}"), set()
                continue
            if not items:
                yield str(path), n, skip("a row without objects (nothing to ground)"), set()
                continue
            lost = {k for k in rec if k not in ("filename", "height", "width", "detection", "grounding")}
            yield str(path), n, _row(file, question, "\n".join("<ref-object><bbox>" for _ in items),
                                     [name for name, _ in items], [box for _, box in items]), lost


READERS = {"coco": coco, "refcoco": refcoco, "odvg": odvg}
