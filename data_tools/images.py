"""Image size and mode from the file header (a few hundred bytes), without decoding pixels.

PNG, JPEG and WebP are parsed here directly (the formats datasets mostly use, and the ones where this is
much faster than Pillow); everything else (BMP with its many header variants, TIFF, ...) goes to
Pillow's lazy open, which also reads only the header. Both agree with Pillow on size and mode
(tests/data/test_image_headers.py, over a generated corpus of formats and variants). Pillow's
decompression-bomb limit, which stops swift's `Image.open`, is an error here too. The fast paths open a
file exactly when Pillow's Image.open does (the headers Pillow reads must be whole: PNG chunks before the
first IDAT, with their checksums; JPEG segments up to the start of scan; a whole WebP RIFF), and a cheap
walk of the rest (PNG chunk headers, the JPEG end marker) warns of truncated pixel data; `decode` (--deep)
is exact.
"""
from __future__ import annotations

import io
import os
import struct
import zlib
from dataclasses import dataclass, replace
from typing import BinaryIO


@dataclass(frozen=True)
class ImageInfo:
    format: str
    width: int
    height: int
    mode: str = ""
    damage: str | None = None      # the structure walk's finding: header only, truncated (pixels not decoded)


class ImageError(Exception):
    """The file is not an image we can read (message says why)."""


_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_MODES = {1: "L", 3: "RGB", 4: "CMYK"}
# (bit depth, colour type) -> Pillow's mode (PngImagePlugin)
_PNG_MODES = {(1, 0): "1", (2, 0): "L", (4, 0): "L", (8, 0): "L", (16, 0): "I;16", (8, 2): "RGB", (16, 2): "RGB",
              (1, 3): "P", (2, 3): "P", (4, 3): "P", (8, 3): "P", (8, 4): "LA", (16, 4): "LA", (8, 6): "RGBA",
              (16, 6): "RGBA"}


def bomb_limit() -> int:
    """Pixels above which Pillow's Image.open raises DecompressionBombError (twice MAX_IMAGE_PIXELS)."""
    from PIL import Image
    return 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else 0


def _check_bomb(info: ImageInfo) -> ImageInfo:
    limit = bomb_limit()
    if limit and info.width * info.height > limit:
        raise ImageError(f"{info.width}x{info.height} = {info.width * info.height:,} pixels, over Pillow's "
                         f"decompression-bomb limit of {limit:,}: swift cannot open it; fix: downscale the image")
    return info


def _jpeg(f: BinaryIO, head: bytes, size: int) -> ImageInfo:
    """Pillow opens a JPEG once every marker segment up to the start of scan is whole: so must we."""
    data, pos, found = head, 2, None

    def have(n: int) -> bool:
        nonlocal data
        while len(data) < n:
            more = f.read(max(4096, n - len(data)))
            if not more:
                return False
            data += more
        return True

    while True:
        if not have(pos + 2):
            if found is not None:     # it ends between segments: Pillow opens it, but has no pixels to load
                return ImageInfo("JPEG", *found, "the JPEG ends before its image data: truncated")
            raise ImageError("the JPEG ends before its image data (a truncated header): Pillow cannot open it")
        if data[pos] != 0xFF:         # junk between segments: Pillow skips it
            pos += 1
            continue
        marker = data[pos + 1]
        if marker == 0xFF:            # fill byte
            pos += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            pos += 2
            continue
        if not have(pos + 4) or not have(pos + 2 + struct.unpack(">H", data[pos + 2:pos + 4])[0]):
            raise ImageError("the JPEG ends inside a header segment (truncated): Pillow cannot open it")
        seg_len = struct.unpack(">H", data[pos + 2:pos + 4])[0]
        if marker in _JPEG_SOF and seg_len >= 8:
            h, w = struct.unpack(">HH", data[pos + 5:pos + 9])
            found = (w, h, _JPEG_MODES.get(data[pos + 9], ""))
        if marker == 0xDA:            # start of scan: Pillow stops reading headers here
            if found is None:
                raise ImageError("a JPEG with no frame header (SOF) before its scan: Pillow cannot open it")
            f.seek(max(size - 2, 0))
            damage = None if f.read(2) == b"\xff\xd9" else "no JPEG end marker: the file looks truncated"
            return ImageInfo("JPEG", *found, damage)
        pos += 2 + seg_len


def _png(f: BinaryIO, head: bytes, size: int) -> ImageInfo:
    """Pillow opens a PNG once every chunk before the first IDAT is whole, with its CRC right, and the IDAT
    header is there; the rest (the pixel data) is only walked by chunk header, for the damage warning."""
    w, h, depth, colour = struct.unpack(">IIBB", head[16:26])
    data, pos = head + f.read(4096), 8            # the chunks before IDAT are small: usually one read
    while True:
        if len(data) < pos + 8:
            data += f.read(max(4096, pos + 8 - len(data)))
        if len(data) < pos + 8:
            raise ImageError("the PNG ends before its image data (IDAT): only a header, Pillow cannot open it")
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        if not kind.isalpha() or not kind.isascii():
            raise ImageError(f"a broken PNG chunk ({kind!r}): Pillow cannot open it")
        if kind in (b"IDAT", b"fdAT"):
            break
        end = pos + 12 + length
        if len(data) < end:
            data += f.read(end - len(data))
        if len(data) < end:
            raise ImageError(f"the PNG ends inside its {kind.decode()} chunk (truncated): Pillow cannot open it")
        if zlib.crc32(data[pos + 4:end - 4]) != struct.unpack(">I", data[end - 4:end])[0]:
            raise ImageError(f"a bad checksum in the PNG's {kind.decode()} chunk: Pillow cannot open it")
        pos = end
    seen: set[bytes] = set()
    while pos + 8 <= size and b"IEND" not in seen:           # chunk headers only: seek over the data
        if len(data) >= pos + 8:
            top = data[pos:pos + 8]
        else:
            f.seek(pos)
            top = f.read(8)
        length, kind = struct.unpack(">I4s", top)
        pos += 12 + length
        seen.add(kind)
    damage = None if pos <= size and b"IEND" in seen else "the PNG ends inside its data: truncated"
    return ImageInfo("PNG", w, h, _PNG_MODES.get((depth, colour), ""), damage)


def _webp(head: bytes) -> ImageInfo | None:
    kind = head[12:16]
    if kind == b"VP8 ":
        w, h = struct.unpack("<HH", head[26:30])
        return ImageInfo("WEBP", w & 0x3FFF, h & 0x3FFF, "RGB")
    if kind == b"VP8L":
        b = head[21:25]
        w = 1 + (((b[1] & 0x3F) << 8) | b[0])
        h = 1 + (((b[3] & 0xF) << 10) | (b[2] << 2) | ((b[1] & 0xC0) >> 6))
        return ImageInfo("WEBP", w, h, "RGBA" if b[3] & 0x10 else "RGB")
    if kind == b"VP8X":
        w = 1 + int.from_bytes(head[24:27], "little")
        h = 1 + int.from_bytes(head[27:30], "little")
        return ImageInfo("WEBP", w, h, "RGBA" if head[20] & 0x10 else "RGB")
    return None


Source = str | bytes          # a file path, or the image's bytes (decoded base64 / data: URI)


def _open(src: Source) -> BinaryIO:
    return io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")


def read_header(src: Source) -> ImageInfo:
    """Format, size and mode of an image; raises ImageError (or OSError) when swift could not open it."""
    with _open(src) as f:
        size = len(src) if isinstance(src, bytes) else os.fstat(f.fileno()).st_size
        head = f.read(64)
        info = None
        if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and len(head) >= 26:
            info = _png(f, head, size)
        elif head[:3] == b"\xff\xd8\xff":
            info = _jpeg(f, head, size)
        elif head[:4] == b"RIFF" and head[8:12] == b"WEBP" and len(head) >= 30 and \
                size >= 8 + int.from_bytes(head[4:8], "little"):        # else Pillow (it reads it all) decides
            info = _webp(head)
        elif head[:6] in (b"GIF87a", b"GIF89a"):
            # Not from the header: the logical screen can be 0x0 or smaller than the first frame, and
            # swift sees the size Pillow gives the loaded frame.
            try:
                return decode(src)
            except ImageError as e:          # Pillow may still open it: the header's size, and the damage
                return replace(_pil_header(src), damage=f"the GIF {e}")
    return _check_bomb(info) if info is not None else _pil_header(src)


def _pil_header(src: Source) -> ImageInfo:
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(_open(src)) as im:
            return ImageInfo(im.format or "?", *im.size, im.mode)
    except UnidentifiedImageError:
        raise ImageError("not an image in a format Pillow recognises") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"over Pillow's decompression-bomb limit: swift cannot open it ({e})") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise ImageError(f"a broken image header: {e}") from None


def decode(src: Source) -> ImageInfo:
    """Fully decode the image (catches truncated or corrupt pixel data)."""
    from PIL import Image, UnidentifiedImageError
    try:
        with Image.open(_open(src)) as im:
            im.load()
            return ImageInfo(im.format or "?", *im.size, im.mode)
    except UnidentifiedImageError:
        raise ImageError("not an image in a format Pillow recognises") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"over Pillow's decompression-bomb limit: swift cannot open it ({e})") from None
    except (OSError, SyntaxError, ValueError, struct.error, EOFError, MemoryError) as e:
        raise ImageError(f"cannot decode: {e}") from None
