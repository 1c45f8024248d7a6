"""swift deploy plugin (`--external_plugins`): a request with a bad image is told which image and why.

swift answers a local path it cannot find with "value: PATH" (422: the path, not the reason) and an image it
cannot decode with Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" (400: neither which
image nor from where). This checks each image of a chat request where swift reads it, as swift reads it
(a plain string is a path on the server's disk, a `data:<type>;base64,` URI, an http(s) URL, or raw base64
when it is longer than 200 characters or in the `images` field), and refuses it with a message that names
the image, what it was given and what to send instead. Accepted requests go on unchanged; URLs are left to
swift (fetching them twice would cost the caller a second download).
"""
from __future__ import annotations

import base64
import binascii
import io
import os
import re
from collections.abc import Iterator

from PIL import Image, UnidentifiedImageError
from swift.infer_engine.protocol import ChatCompletionRequest
from swift.utils.media_utils import SafeMediaPath

INLINE = "send the image inline as data:image/png;base64,... or as an http(s) URL"
DATA_URI = re.compile(r"data:(.+?);base64,(.+)", re.S)      # swift's own reading (vision_utils.load_file)


def _images(request: ChatCompletionRequest) -> Iterator[tuple[str, str]]:
    """(where, value) of each image string in the request, in order."""
    for i, value in enumerate(request.images or []):
        if isinstance(value, str):           # swift reads a string that is no file here as base64, silently
            yield f"images[{i}]", value
    for m, message in enumerate(request.messages or []):
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list):
            continue
        for c, item in enumerate(content):
            if isinstance(item, dict) and item.get("type") in ("image", "image_url"):
                value = item.get(item["type"])
                value = value.get("url") if isinstance(value, dict) else value
                if isinstance(value, str):
                    yield f"messages[{m}].content[{c}]", value


def _is_remote(value: str) -> bool:
    return value.strip().lower().startswith(("http://", "https://"))


def _shown(value: str) -> str:
    return repr(value) if len(value) <= 80 else f"{value[:40]!r}... ({len(value)} characters)"


def _check_path(where: str, value: str) -> None:
    """A string swift reads from disk must be a file there (after swift's own SWIFT_MEDIA_ALLOWED_DIRS check,
    whose refusal stays the same whether the file exists or not)."""
    if value.startswith("data:") or _is_remote(value) or len(value) > 200:
        return
    SafeMediaPath.check(value)
    if not os.path.isfile(value):
        raise ValueError(f"image {where}: {_shown(value)} is not a file on the server (a plain string is read "
                         f"from the server's own disk); {INLINE}")


def _check_decodes(where: str, given: str, value: str) -> None:
    """The bytes swift will hand to Pillow must open and decode as an image."""
    if _is_remote(value):
        return
    data = value.strip()
    if data.startswith("data:"):
        match = DATA_URI.match(data)
        if match is None:
            raise ValueError(f"image {where}: a data: URI must read data:<type>;base64,<data>; got {_shown(given)}")
        data = match.group(2)
    try:
        raw = base64.b64decode(data)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"image {where}: {_shown(given)} is neither a file on the server nor valid base64 "
                         f"({e}); {INLINE}") from None
    try:
        with Image.open(io.BytesIO(raw)) as image:
            image.load()
    except Exception as e:        # Pillow raises many kinds (UnidentifiedImageError, OSError, bomb, SyntaxError)
        reason = ("not a format Pillow recognises" if isinstance(e, UnidentifiedImageError)
                  else f"{type(e).__name__}: {e}")
        if _is_file(given):
            what = f"(a file of {len(raw)} bytes) is not an image Pillow can decode"
        elif not given.startswith("data:") and len(given) <= 200:
            what = "is neither a file on the server nor base64 of an image"
        else:
            what = f"({len(raw)} bytes once decoded) is not an image Pillow can decode"
        raise ValueError(f"image {where}: {_shown(given)} {what}: {reason}") from None


def _is_file(value: str) -> bool:
    return not value.startswith("data:") and len(value) <= 4096 and os.path.isfile(value)


_original_post_init = ChatCompletionRequest.__post_init__


def __post_init__(self: ChatCompletionRequest) -> None:
    given = list(_images(self))
    for where, value in given:
        if where.startswith("messages"):          # where swift itself refuses a missing path ("value: PATH")
            _check_path(where, value)
    _original_post_init(self)                     # swift inlines local files as base64 here
    for (where, original), (_, value) in zip(given, _images(self)):
        _check_decodes(where, original, value)


if getattr(ChatCompletionRequest.__post_init__, "__module__", None) != __name__:
    ChatCompletionRequest.__post_init__ = __post_init__
