"""Image size from the file header (a few hundred bytes), without decoding pixels.

PNG, JPEG, GIF, BMP and WebP are parsed here directly (the formats datasets actually use); anything
else falls back to Pillow's lazy open, which also reads only the header. `decode` does a full decode
for --deep, which is the only way to catch a truncated file.
"""
from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from typing import BinaryIO


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int


class ImageError(Exception):
    """The file is not an image we can read (message says why)."""


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def _jpeg_size(f, head: bytes) -> tuple[int, int]:
    data, pos = head, 2
    while True:
        while len(data) < pos + 9:
            more = f.read(4096)
            if not more:
                raise ImageError("JPEG ends before its size marker (truncated?)")
            data += more
        if data[pos] != 0xFF:
            raise ImageError("corrupt JPEG marker sequence")
        marker = data[pos + 1]
        if marker == 0xFF:            # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        seg_len = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _JPEG_SOF:
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            return w, h
        pos += 2 + seg_len


Source = str | bytes          # a file path, or the image's bytes (decoded base64 / data: URI)


def _open(src: Source) -> BinaryIO:
    return io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")


def read_header(src: Source) -> ImageInfo:
    """Format and size of an image; raises ImageError (or OSError) when it is not readable."""
    with _open(src) as f:
        head = f.read(64)
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR":
            w, h = struct.unpack(">II", head[16:24])
            return ImageInfo("PNG", w, h)
        if head[:3] == b"\xff\xd8\xff":
            w, h = _jpeg_size(f, head)
            return ImageInfo("JPEG", w, h)
        if head[:6] in (b"GIF87a", b"GIF89a"):
            # Not from the header: the logical screen can be 0x0 or smaller than the first frame, and
            # swift sees the size Pillow gives the loaded frame.
            return decode(src)
        if head[:2] == b"BM" and len(head) >= 26:
            w, h = struct.unpack("<ii", head[18:26])
            return ImageInfo("BMP", w, abs(h))
        if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
            kind = head[12:16]
            if kind == b"VP8 ":
                w, h = struct.unpack("<HH", head[26:30])
                return ImageInfo("WEBP", w & 0x3FFF, h & 0x3FFF)
            if kind == b"VP8L":
                b = head[21:25]
                w = 1 + (((b[1] & 0x3F) << 8) | b[0])
                h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
                return ImageInfo("WEBP", w, h)
            if kind == b"VP8X":
                w = 1 + int.from_bytes(head[24:27], "little")
                h = 1 + int.from_bytes(head[27:30], "little")
                return ImageInfo("WEBP", w, h)
    return _pil_header(src)


def _pil_header(src: Source) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(_open(src)) as im:
            return ImageInfo(im.format or "?", *im.size)
    except UnidentifiedImageError:
        raise ImageError("not an image in a format Pillow recognises") from None


def decode(src: Source) -> ImageInfo:
    """Fully decode the image (catches truncated or corrupt pixel data)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(_open(src)) as im:
            im.load()
            return ImageInfo(im.format or "?", *im.size)
    except UnidentifiedImageError:
        raise ImageError("not an image in a format Pillow recognises") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"cannot decode: {e}") from None
