"""A seeded grammar of dataset files as swift's loader reads them, for differential tests against swift.

Each file holds 1-3 generated rows and one plain good row; each generated row is one of swift's row formats
(messages, ShareGPT conversations, alpaca, query/response, OpenAI content parts) with a random media
spelling, image kind, role pattern, per-message keys and tags, written with a random JSON-level oddity
(duplicate keys, NaN, several objects on a line, trailing text, a comment, an array line, a BOM, a line in
latin-1, a whole file in UTF-16). Every row's answer carries a unique marker, so a row swift loaded can be
matched to the row validate saw. The same seed always gives the same files.
"""
from __future__ import annotations

import base64
import io
import json
import random
import struct
import zlib
from pathlib import Path

from PIL import Image

# (format, file extension, modes Pillow writes it in)
FORMATS = (("PNG", "png", ("RGB", "RGBA", "L", "P", "1", "I;16")), ("JPEG", "jpg", ("RGB", "L", "CMYK")),
           ("GIF", "gif", ("P", "L")), ("BMP", "bmp", ("RGB", "P", "1")), ("WEBP", "webp", ("RGB", "RGBA")),
           ("TIFF", "tiff", ("RGB", "L")), ("TGA", "tga", ("RGB",)), ("PPM", "ppm", ("RGB", "L")),
           ("ICO", "ico", ("RGBA",)), ("QOI", "qoi", ("RGB", "RGBA")))
SIZES = ((64, 48), (48, 64), (200, 30), (30, 200), (500, 400), (1000, 100), (17, 5), (112, 56), (1, 1), (3, 700))
# EXIF orientation 6 (rotate 90): swift's loader does not apply it; the stored size is the size it sees
EXIF_ROTATED = (b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06"
                b"\x00\x00\x00\x00\x00")


def _encode(size: tuple[int, int], fmt: str, mode: str = "RGB", **options) -> bytes:
    im = Image.new(mode, size)
    if mode == "P":
        im.putpalette([i % 256 for i in range(768)])
    buf = io.BytesIO()
    try:
        im.save(buf, fmt, **options)
    except (OSError, ValueError, KeyError):        # a size or mode this format cannot hold
        buf = io.BytesIO()
        Image.new("RGB", size, "red").save(buf, "PNG")
    return buf.getvalue()


def _bomb_png() -> bytes:
    """A PNG whose header claims more pixels than Pillow's decompression-bomb limit (tiny on disk)."""
    side = 20000
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    chunks = [(b"IHDR", ihdr), (b"IDAT", zlib.compress(b"\0")), (b"IEND", b"")]
    return b"\x89PNG\r\n\x1a\n" + b"".join(struct.pack(">I", len(d)) + k + d + struct.pack(">I", zlib.crc32(k + d))
                                           for k, d in chunks)


class Grammar:
    """Writes generated files under root/data; images under root/abs and root/cwd (the test's cwd is root)."""

    def __init__(self, root: Path, seed: int):
        self.root, self.rng, self.n = root, random.Random(seed), 0
        for d in ("data", "abs", "cwd"):
            (root / d).mkdir(parents=True, exist_ok=True)

    # ---- images ----
    def _image_file(self, where: str, data: bytes, ext: str) -> Path:
        self.n += 1
        path = self.root / where / f"g{self.n}.{ext}"
        path.write_bytes(data)
        return path

    def image_ref(self) -> str | dict:
        """One image reference in one of the spellings and kinds swift reads (or refuses)."""
        r = self.rng
        size = r.choice(SIZES)
        fmt, ext, modes = r.choice(FORMATS)
        variant = r.choices(["plain", "exif-rotated", "progressive"], weights=[8, 1, 1])[0] if fmt == "JPEG" else ""
        options = {"exif": EXIF_ROTATED} if variant == "exif-rotated" else {"progressive": True} \
            if variant == "progressive" else {}
        data = _encode(size, fmt, r.choice(modes), **options)
        kind = r.choices(["abs", "cwd", "base64", "data-uri", "data-uri-wrapped", "dict", "missing", "not-image",
                          "header-only", "truncated", "bomb"], weights=[8, 3, 2, 2, 1, 2, 1, 1, 1, 1, 1])[0]
        if kind == "abs":
            return str(self._image_file("abs", data, ext))
        if kind == "cwd":
            return f"cwd/{self._image_file('cwd', data, ext).name}"
        if kind in ("base64", "data-uri", "data-uri-wrapped"):     # inline: small (lines stay under Arrow's block)
            data = _encode(r.choice(SIZES[:4]), fmt, r.choice(modes), **options)
        if kind == "base64":
            return base64.b64encode(data).decode()
        if kind in ("data-uri", "data-uri-wrapped"):
            b64 = base64.b64encode(data).decode()
            if kind == "data-uri-wrapped":                  # base64 wrapped at 76 columns, as MIME tools write it
                b64 = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
            return f"data:image/{ext};base64," + b64
        if kind == "dict":
            return {"path": str(self._image_file("abs", data, ext))}
        if kind == "missing":
            return str(self.root / "abs" / f"gone{self.n}.png")
        if kind == "not-image":
            return str(self._image_file("abs", b"not an image", "png"))
        if kind == "bomb":
            return str(self._image_file("abs", _bomb_png(), "png"))
        png = _encode(size, "PNG")
        return str(self._image_file("abs", png[:33] if kind == "header-only" else png[:len(png) - 30], "png"))

    # ---- rows ----
    def _tags(self, n_images: int) -> str:
        r = self.rng
        have = r.choices([n_images, max(n_images - 1, 0), n_images + 1], weights=[8, 1, 1])[0]
        sep = r.choice(["", "\n", " "])
        return ("<image>" + sep) * have

    def _turns(self, marker: str, first: str) -> list[tuple[str, str]]:
        r = self.rng
        turns = [("user", first), ("assistant", f"answer {marker}")]
        for i in range(r.choice([0, 0, 1, 2])):
            turns = [("user", f"q{i}"), ("assistant", f"a{i} {marker}")] + turns
        if r.random() < 0.1:                                   # an answer that already ends the turn
            turns[-1] = ("assistant", turns[-1][1] + r.choice(["<|im_end|>", "<|im_end|>\n", "</s>"]))
        pattern = r.choices(["plain", "system", "two-users", "ends-user", "starts-assistant", "tool", "narrator",
                             "two-answers", "tool-call"], weights=[10, 3, 1, 1, 1, 1, 1, 1, 1])[0]
        if pattern == "system":
            turns = [("system", r.choice(["Be brief.", ""]))] + turns
        elif pattern == "two-users":
            turns = turns[:-1] + [("user", "more")] + turns[-1:]
        elif pattern == "ends-user":
            turns = turns + [("user", "and?")]
        elif pattern == "starts-assistant":
            turns = [("assistant", "hello")] + turns
        elif pattern in ("tool", "narrator"):
            turns = turns[:1] + [(pattern, "x")] + turns[1:]
        elif pattern == "two-answers":
            turns = turns + [("assistant", f"more {marker}")]
        elif pattern == "tool-call":
            turns = turns[:1] + [("tool_call", '{"name": "f", "arguments": {}}'), ("tool_response", "42")] + turns[1:]
        return turns

    def row(self, marker: str) -> dict:
        r = self.rng
        n_images = r.choices([0, 1, 2], weights=[2, 6, 2])[0]
        images = [self.image_ref() for _ in range(n_images)]
        question = self._tags(n_images) + r.choice(["What is it?", "读一下", "", "Describe.", "Read <ref>it</ref>.",
                                                    "a\u00a0b\u200b ", "tab\tand\r\nlines"])
        if not images and r.random() < 0.1:                      # InternVL's own <img>path</img> in the text
            question = f"<img>{self.image_ref()}</img>" + question
        turns = self._turns(marker, question)
        form = r.choices(["messages", "sharegpt", "alpaca", "query", "openai"], weights=[8, 2, 1, 1, 1])[0]
        row: dict
        if form == "messages":
            msgs = []
            for role, content in turns:
                m = {"role": role, "content": content}
                extra = r.choices(["", "loss", "loss_scale", "weight", "null"], weights=[12, 2, 1, 1, 1])[0]
                if extra == "loss" and role == "assistant":
                    m["loss"] = r.choice([True, False])
                elif extra == "loss_scale" and role == "assistant":
                    m["loss_scale"] = 0.5
                elif extra == "weight":
                    m["weight"] = 2
                elif extra == "null" and role == "assistant" and content.startswith("a"):
                    m["content"] = None
                msgs.append(m)
            row = {"messages": msgs}
        elif form == "sharegpt":
            names = {"user": r.choice(["human", "user"]), "assistant": r.choice(["gpt", "assistant", "bot"]),
                     "system": "system", "tool_call": "function_call", "tool_response": "observation"}
            row = {"conversations": [{"from": names.get(role, role), "value": c} for role, c in turns]}
            if r.random() < 0.2 and turns[0][0] != "system":
                row["system"] = "You are a reader."
        elif form == "alpaca":
            row = {"instruction": question, "input": r.choice(["", "x"]), "output": f"out {marker}"}
        elif form == "query":
            row = {"query": question, "response": f"resp {marker}"}
        else:
            parts = [{"type": "image", "image": im} for im in images if isinstance(im, str)] + [
                {"type": "text", "text": question.replace("<image>", "") or "hi"}]
            row = {"messages": [{"role": "user", "content": parts},
                                {"role": "assistant", "content": f"answer {marker}"}]}
            images = []
        if images:
            spelling = r.choices(["images", "image", "images-str"], weights=[6, 1, 1])[0]
            if spelling == "images":
                row["images"] = images
            elif spelling == "image":
                row["image"] = images[0] if len(images) == 1 else images
            else:
                row["images"] = images[0] if len(images) == 1 and isinstance(images[0], str) else images
        return row

    # ---- lines and files ----
    def line(self, rows: list[dict]) -> bytes:
        """One line holding the row(s), with a JSON-level oddity now and then."""
        r = self.rng
        oddity = r.choices(["plain", "duplicate-key", "nan", "two-objects", "trailing", "array", "latin-1"],
                           weights=[40, 1, 2, 2, 1, 1, 1])[0]
        text = json.dumps(rows[0], ensure_ascii=r.random() < 0.5)
        if oddity == "duplicate-key":
            text = text[:-1] + ', "messages": []}' if "messages" in rows[0] else text
        elif oddity == "nan":
            text = text[:-1] + ', "score": NaN}'
        elif oddity == "two-objects" and len(rows) > 1:
            text = text + " " + json.dumps(rows[1])
        elif oddity == "trailing":
            text += " trailing"
        elif oddity == "array":
            text = f"[{text}]"
        elif oddity == "latin-1":                             # a line saved in another encoding
            return text[:-1].encode() + ', "note": "caf\xe9"}'.encode("latin-1")
        return text.encode()

    def file(self, index: int) -> tuple[Path, list[str]]:
        """A file of 1-3 generated rows and a plain good row (its marker ends in "ok": whether swift loaded it
        tells a file swift fails from rows it drops), and the markers it holds."""
        r = self.rng
        sentinel = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": f"fine m{index}ok"}]}
        markers, lines = [f"m{index}ok"], [json.dumps(sentinel).encode()]
        for j in range(r.choice([1, 1, 2, 3])):
            marker = f"m{index}x{j}"
            markers.append(marker)
            lines.append(self.line([self.row(marker), self.row(marker + "b")]))
            if b"} {" in lines[-1]:
                markers.append(marker + "b")
        if r.random() < 0.05:
            lines.insert(r.randrange(len(lines) + 1), b"// a comment")
        r.shuffle(lines)
        if r.random() < 0.05:
            lines[0] = b"\xef\xbb\xbf" + lines[0]
        path = self.root / "data" / f"gen{index:04d}.jsonl"
        data = b"\n".join(lines) + b"\n"
        if r.random() < 0.01:                                  # the whole file saved as UTF-16 (a Windows editor)
            data = data.decode("utf-8", "replace").encode("utf-16")
        path.write_bytes(data)
        return path, markers
