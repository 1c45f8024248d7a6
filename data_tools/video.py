"""Video files as swift's InternVL templates read them, from the container header (PyAV, no frame decoded).

The chat route (internvl2_5 / internvl3_5) decodes with decord and takes VIDEO_SEGMENTS frames (default 8)
spread over the video, whatever its length; each frame, and every image of a sample with a video, is tiled
with VIDEO_MAX_NUM (default 1). The -HF route loads the video through transformers with PyAV and its video
processor keeps every frame the stream header declares (do_sample_frames is off): a long video is long.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

VIDEO_SEGMENTS, VIDEO_MAX_NUM = 8, 1          # swift 4.6's Internvl2Template defaults


class VideoError(Exception):
    pass


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    frames: int              # as the stream header declares them (what the -HF route loads)


def read_header(path: str) -> VideoInfo:
    """The first video stream's size and frame count; VideoError when swift could not read it."""
    try:
        import av
    except ImportError:
        raise VideoError("PyAV is not installed (pip install av): swift's -HF route needs it to load videos, "
                         "and validate to read them") from None
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError("no video stream in the file")
            stream = container.streams.video[0]
            info = VideoInfo(int(stream.width or 0), int(stream.height or 0), int(stream.frames or 0))
    except VideoError:
        raise
    except Exception as e:  # noqa: BLE001 - PyAV raises its own error types for every container problem
        raise VideoError(f"does not open as a video ({type(e).__name__}: {str(e).splitlines()[0][:120]})") from None
    if not info.width or not info.height:
        raise VideoError("the video stream has no frame size")
    if not info.frames:
        raise VideoError("the video stream declares no frame count, which swift's -HF route needs")
    return info


def knobs(video_segments: int | None = None, video_max_num: int | None = None) -> tuple[int, int]:
    """The frames per video and tiles per frame of the chat route: given, else the environment, as swift reads them."""
    segments = video_segments or int(os.environ.get("VIDEO_SEGMENTS") or VIDEO_SEGMENTS)
    max_num = video_max_num or int(os.environ.get("VIDEO_MAX_NUM") or VIDEO_MAX_NUM)
    return segments, max_num
