"""Seeded grounding rows for the differential test against swift: referring and detection rows with `objects`
(pixel and norm1 boxes, points, several images with image_id, rows without images, objects as a JSON string),
and the faults users make (swapped corners, boxes outside the image or already normalised, tag counts that do
not match, a missing bbox, a box of three numbers, an image_id beyond the images, ref as a string). One row per
file beside a plain sentinel row, as tests/data/row_grammar.py writes them."""
from __future__ import annotations

import json
import random
from pathlib import Path

from PIL import Image

SIZES = ((200, 100), (64, 64), (640, 480), (30, 300), (1000, 700))
FAULTS = ("swap", "outside", "norm1-over", "looks-normalised", "image-id", "no-bbox", "three-numbers",
          "string-objects", "ref-string", "not-a-mapping", "tags-without-objects", "extra-ref-tag",
          "extra-box", "unknown-type", "image-id-int")


class GroundingRows:
    def __init__(self, root: Path, seed: int):
        self.root, self.rng = root, random.Random(seed)
        self.images = []
        for i, size in enumerate(SIZES):
            path = root / f"g{i}.png"
            Image.new("RGB", size, (40 * i, 90, 200)).save(path)
            self.images.append((str(path), size))

    def _box(self, size: tuple[int, int], norm: bool) -> list:
        r, (w, h) = self.rng, size
        x1, y1 = r.uniform(0, w * 0.6), r.uniform(0, h * 0.6)
        x2, y2 = r.uniform(x1 + 1, w), r.uniform(y1 + 1, h)
        box = [x1, y1, x2, y2]
        if norm:
            return [round(box[0] / w, 3), round(box[1] / h, 3), round(box[2] / w, 3), round(box[3] / h, 3)]
        if r.random() < 0.6:
            box = [int(v) for v in box]
        else:
            box = [round(v, 1) for v in box]
        return box[:2] if r.random() < 0.1 else box

    def row(self, marker: str, fault: str | None) -> dict:
        r = self.rng
        n_images = 0 if r.random() < 0.1 else r.choice([1, 1, 1, 2])
        images = r.sample(self.images, n_images)
        norm = r.random() < 0.25
        n = r.choice([1, 1, 2, 3])
        ids = [r.randrange(n_images) if n_images else 0 for _ in range(n)]
        boxes = [self._box(images[i][1] if images else (500, 500), norm) for i in ids]
        refs = [r.choice(["the red square", "a cat", "左边的人", "button 'OK'", "item 3"]) for _ in range(n)]
        objects: dict = {"ref": refs, "bbox": boxes}
        if norm:
            objects["bbox_type"] = "norm1"
        if n_images > 1 or r.random() < 0.2:
            objects["image_id"] = ids
        tags = "".join("<image>" for _ in images)
        if n == 1 and r.random() < 0.6:                       # referring: the question names it, the answer boxes it
            user, answer = f"{tags}Where is <ref-object>?", f"<bbox> {marker}"
        else:                                                 # detection: the answer names and boxes each
            user, answer = f"{tags}Find every object.", " ".join("<ref-object><bbox>" for _ in range(n)) + f" {marker}"
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
        if r.random() < 0.1:
            messages.insert(0, {"role": "system", "content": "Answer with boxes."})
        row: dict = {"messages": messages, "objects": objects}
        if images:
            row["images"] = [p for p, _ in images]
        if r.random() < 0.1:
            row["objects"] = json.dumps(objects)
        if fault:
            self._fault(row, fault, images)
        return row

    def _fault(self, row: dict, fault: str, images: list) -> None:
        objects = row["objects"] if isinstance(row["objects"], dict) else json.loads(row["objects"])
        row["objects"] = objects
        box = objects["bbox"][0]
        size = images[objects.get("image_id", [0])[0]][1] if images else (500, 500)
        if fault == "swap" and len(box) == 4:
            box[0], box[2] = box[2], box[0]
        elif fault == "outside" and objects.get("bbox_type") != "norm1":
            box[-2] = size[0] + 25
        elif fault == "norm1-over":
            objects["bbox_type"], objects["bbox"][0] = "norm1", [0.1, 0.2, 1.4, 0.9]
        elif fault == "looks-normalised":
            objects.pop("bbox_type", None)
            objects["bbox"][0] = [0.12, 0.2, 0.55, 0.9]
        elif fault == "image-id":
            objects["image_id"] = [len(images) + 1] * len(objects["bbox"])
        elif fault == "no-bbox":
            del objects["bbox"]
        elif fault == "three-numbers":
            objects["bbox"][0] = box[:2] + [7]
        elif fault == "string-objects":
            row["objects"] = json.dumps(objects)
        elif fault == "ref-string":
            objects["ref"] = objects["ref"][0]
        elif fault == "not-a-mapping":
            row["objects"] = [objects]
        elif fault == "tags-without-objects":
            del row["objects"]
        elif fault == "extra-ref-tag":
            row["messages"][-2 if len(row["messages"]) > 2 else 0]["content"] += " and <ref-object>"
        elif fault == "extra-box":
            objects["bbox"].append([1, 2, 3, 4])
            objects["ref"].append("spare")
        elif fault == "unknown-type":
            objects["bbox_type"] = "xyxy"
        elif fault == "image-id-int":
            objects["image_id"] = 1

    def file(self, index: int) -> tuple[Path, list[str]]:
        fault = FAULTS[index % len(FAULTS)] if index % 3 == 0 else None
        marker = f"g{index}x"
        sentinel = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": f"fine g{index}ok"}]}
        path = self.root / f"ground{index:04d}.jsonl"
        path.write_text(json.dumps(sentinel) + "\n" + json.dumps(self.row(marker, fault), ensure_ascii=False) + "\n")
        return path, [f"g{index}ok", marker]
