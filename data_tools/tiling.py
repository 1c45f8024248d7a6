"""InternVL dynamic-resolution tiling, computed from the image size alone.

An image is resized to the grid (cols x rows of square tiles, cols*rows <= max_num) whose aspect ratio
is closest to the image's; when two grids tie, the larger wins while the image area exceeds half the
grid's area. A thumbnail tile is added when the grid has more than one tile. Two implementations
exist with different candidate orders (which decides exact ties): swift's internvl_chat templates
(`_dynamic_preprocess`) and transformers' GotOcr2 image processor used by the -HF models. Both are
reproduced exactly; the exactness test compares them with swift's own encode.
"""
from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=64)
def _grids_swift(max_num: int, min_num: int = 1) -> tuple[tuple[int, int], ...]:
    grids = set((i, j) for n in range(min_num, max_num + 1) for i in range(1, n + 1) for j in range(1, n + 1)
                if min_num <= i * j <= max_num)
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


@lru_cache(maxsize=64)
def _grids_hf(max_num: int, min_num: int = 1) -> tuple[tuple[int, int], ...]:
    grids = [(w, h) for w in range(1, max_num + 1) for h in range(1, max_num + 1) if min_num <= w * h <= max_num]
    return tuple(sorted(grids, key=lambda g: g[0] * g[1]))


def _closest(width: int, height: int, grids: tuple[tuple[int, int], ...], tile: int) -> tuple[int, int]:
    aspect, area = width / height, width * height
    best_diff, best = float("inf"), (1, 1)
    for g in grids:
        diff = abs(aspect - g[0] / g[1])
        if diff < best_diff:
            best_diff, best = diff, g
        elif diff == best_diff and area > 0.5 * tile * tile * g[0] * g[1]:
            best = g
    return best


@lru_cache(maxsize=65536)       # image sizes repeat a lot within a dataset
def num_tiles(width: int, height: int, max_num: int, tile: int, hf: bool, min_num: int = 1) -> int:
    """Tiles (thumbnail included) for one image of width x height."""
    grids = _grids_hf(max_num, min_num) if hf else _grids_swift(max_num, min_num)
    cols, rows = _closest(width, height, grids, tile)
    n = cols * rows
    return n + 1 if n != 1 else 1


def tokens_per_tile(tile: int, patch: int = 14, downsample: float = 0.5) -> int:
    """Visual tokens per tile after pixel unshuffle: (448/14)^2 * 0.25 = 256."""
    return int((tile // patch) ** 2 * downsample ** 2)
