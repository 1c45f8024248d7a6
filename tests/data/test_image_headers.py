"""The header reader against Pillow (what swift opens images with): the same size and mode for every image of
a generated corpus (20+ formats and variants at odd sizes), Pillow's decompression-bomb limit as an error,
and header-only or truncated files found without decoding; no input gives a traceback."""
from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from data_tools.images import ImageError, bomb_limit, decode, read_header

SIZES = [(1, 1), (3, 7), (17, 5), (64, 48), (48, 64), (255, 1), (1, 255), (257, 3), (123, 457), (1000, 3),
         (640, 480), (31, 33), (96, 96)]
# (format, mode, save options): the formats Pillow writes, in the modes datasets carry
VARIANTS = [("PNG", m, {}) for m in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16")] + [
    ("PNG", "RGB", {"transparency": (0, 0, 0)}), ("PNG", "RGB", {"optimize": True}),
    ("JPEG", "L", {}), ("JPEG", "RGB", {}), ("JPEG", "CMYK", {}), ("JPEG", "RGB", {"progressive": True}),
    ("JPEG", "RGB", {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x01\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06"
                                b"\x00\x00\x00\x00\x00"}),
    ("GIF", "P", {}), ("GIF", "L", {}),
    ("BMP", "RGB", {}), ("BMP", "P", {}), ("BMP", "1", {}), ("BMP", "RGBA", {}),
    ("WEBP", "RGB", {}), ("WEBP", "RGB", {"lossless": True}), ("WEBP", "RGBA", {}), ("WEBP", "RGBA", {"lossless": True}),
    ("TIFF", "RGB", {}), ("TIFF", "L", {"compression": "tiff_lzw"}), ("TGA", "RGB", {}), ("PPM", "RGB", {}),
    ("PPM", "L", {}), ("PCX", "RGB", {}), ("ICO", "RGBA", {}), ("SGI", "RGB", {}), ("XBM", "1", {}),
    ("JPEG2000", "RGB", {}), ("QOI", "RGB", {}), ("QOI", "RGBA", {}),
]


def _image(fmt: str, mode: str, size: tuple[int, int], options: dict) -> bytes | None:
    im = Image.new(mode, size)
    if mode == "P":
        im.putpalette([i % 256 for i in range(768)])
    buf = io.BytesIO()
    try:
        im.save(buf, fmt, **options)
    except (OSError, ValueError, KeyError):         # a size or mode this format cannot hold
        return None
    return buf.getvalue()


def _os2_bmp(width: int, height: int) -> bytes:
    """A BMP with the 12-byte OS/2 BITMAPCOREHEADER (Pillow writes only the Windows one)."""
    row = (width * 3 + 3) // 4 * 4
    pixels = b"\x10\x20\x30" * width + b"\x00" * (row - width * 3)
    header = struct.pack("<IHHHH", 12, width, height, 1, 24)
    body = header + pixels * height
    return b"BM" + struct.pack("<IHHI", 14 + len(body), 0, 0, 26) + body


def _corpus() -> list[tuple[str, bytes]]:
    out = []
    for fmt, mode, options in VARIANTS:
        for size in SIZES:
            data = _image(fmt, mode, size, options)
            if data is not None:
                out.append((f"{fmt}-{mode}-{'-'.join(options) or 'plain'}-{size[0]}x{size[1]}", data))
    out += [(f"BMP-OS2-{w}x{h}", _os2_bmp(w, h)) for w, h in SIZES[:8]]
    return out


def test_the_header_reader_agrees_with_pillow_on_size_and_mode():
    corpus = _corpus()
    kinds = {name.rsplit("-", 1)[0] for name, _ in corpus}
    assert len(corpus) >= 300 and len(kinds) >= 20, (len(corpus), len(kinds))
    wrong = []
    for name, data in corpus:
        with Image.open(io.BytesIO(data)) as im:
            want = (im.size, im.mode)
        got = read_header(data)
        if ((got.width, got.height), got.mode) != want or got.damage:
            wrong.append(f"{name}: read {got}, Pillow {want}")
    assert wrong == [], "\n".join(wrong[:30]) + f"\n({len(wrong)} of {len(corpus)})"


def _png_chunks(*chunks: tuple[bytes, bytes]) -> bytes:
    out = b"\x89PNG\r\n\x1a\n"
    for kind, body in chunks:
        out += struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return out


def test_pillows_decompression_bomb_limit_is_an_error_as_in_swift():
    side = int(bomb_limit() ** 0.5) + 10
    png = _png_chunks((b"IHDR", struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)), (b"IDAT", zlib.compress(b"\0")),
                      (b"IEND", b""))
    bmp = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, side, side, 1, 24, 0, 0, 0, 0,
                                                                  0, 0)
    for data in (png, bmp):
        with pytest.raises(ImageError, match="decompression-bomb limit"):
            read_header(data)
        with pytest.raises(ImageError, match="decompression-bomb limit"):       # --deep: no traceback either
            decode(data)
        with pytest.raises(Image.DecompressionBombError):                    # what swift's Image.open hits
            Image.open(io.BytesIO(data))


def test_header_only_and_truncated_files_are_found_without_decoding():
    whole = _image("PNG", "RGB", (64, 48), {})
    header_only = whole[:33]                                                 # signature + IHDR, nothing else
    with pytest.raises(ImageError, match="only a header"):                  # Pillow cannot even open it
        read_header(header_only)
    cut_png = whole[:len(whole) - 20]
    jpeg = _image("JPEG", "RGB", (64, 48), {})
    cut_jpeg = jpeg[:len(jpeg) - 10]                                         # inside the scan data
    for data in (cut_png, cut_jpeg):
        info = read_header(data)
        assert info.damage and "truncated" in info.damage and (info.width, info.height) == (64, 48)
        with pytest.raises(ImageError):                                      # --deep is exact
            decode(data)
    assert read_header(whole).damage is None and read_header(jpeg).damage is None


@pytest.mark.parametrize("fmt,mode,options", [("PNG", "RGB", {}), ("PNG", "P", {}), ("JPEG", "RGB", {}),
                                              ("JPEG", "L", {"progressive": True}), ("WEBP", "RGB", {}),
                                              ("WEBP", "RGBA", {"lossless": True}), ("GIF", "P", {}),
                                              ("BMP", "RGB", {}), ("TIFF", "RGB", {})])
def test_every_prefix_of_an_image_opens_exactly_when_pillow_opens_it(fmt, mode, options):
    """Cut anywhere (a header-only or truncated file), the header reader opens it exactly when Pillow's
    Image.open does (swift's first step), with the same size and mode; it then warns when the pixels are cut."""
    data = _image(fmt, mode, (40, 30), options)
    wrong = []
    for cut in range(len(data) + 1):
        try:
            with Image.open(io.BytesIO(data[:cut])) as im:
                want = (im.size, im.mode)
        except Exception:  # noqa: BLE001 - whatever Pillow raises, it does not open
            want = None
        try:
            info = read_header(data[:cut])
            got = ((info.width, info.height), info.mode)
        except ImageError:
            got = None
        if got != want:
            wrong.append(f"{cut}/{len(data)}: read {got}, Pillow {want}")
    assert wrong == [], "\n".join(wrong[:20])


def test_no_input_gives_a_traceback():
    """Every prefix of a few real images, and garbage, ends in an ImageInfo or an ImageError."""
    samples = [_image(f, m, (40, 30), {}) for f, m in (("PNG", "RGB"), ("JPEG", "RGB"), ("WEBP", "RGB"),
                                                         ("GIF", "P"), ("BMP", "RGB"), ("TIFF", "RGB"))]
    for data in samples:
        for cut in range(0, len(data), max(1, len(data) // 40)):
            for read in (read_header, decode):
                try:
                    read(data[:cut])
                except ImageError:
                    pass
