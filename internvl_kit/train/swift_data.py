"""Datasets loaded as `swift sft` loads them: swift's registry, preprocessors, subsets, splits and sampling.

The preflight plans from what this returns, and infer.py rebuilds a run's held-out rows with it. Hub
downloads land in the normal ModelScope / Hugging Face caches, so swift's own load afterwards is a cache
hit. Every failure becomes a DataLoadError with one line that says what to do.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from . import split_views

OFFLINE_VARS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
# swift sft's data arguments that change what load_dataset returns (DataArguments.get_dataset_kwargs)
_KWARGS = {"data_seed": "seed", "dataset_num_proc": "num_proc", "load_from_cache_file": "load_from_cache_file",
           "streaming": "streaming", "interleave_prob": "interleave_prob", "stopping_strategy": "stopping_strategy",
           "shuffle_buffer_size": "shuffle_buffer_size", "download_mode": "download_mode", "columns": "columns",
           "strict": "strict", "model_name": "model_name", "model_author": "model_author",
           "remove_unused_columns": "remove_unused_columns",
           "disable_auto_column_mapping": "disable_auto_column_mapping"}


class DataLoadError(Exception):
    """A dataset that cannot be loaded: the message is one line, with the fix."""


def _default(key: str) -> Any:
    from ..recipe.schema import schema
    return schema()["properties"].get(key, {}).get("default")


def setting(data: dict[str, Any], key: str) -> Any:
    """A recipe's value for a swift data argument, or swift's default for it."""
    return data[key] if key in data else _default(key)


def use_hf(data: dict[str, Any]) -> bool:
    """swift's own rule: the recipe's use_hf, or USE_HF in the environment."""
    return bool(setting(data, "use_hf")) or os.environ.get("USE_HF", "0").lower() in ("1", "true")


def dataset_kwargs(data: dict[str, Any]) -> dict[str, Any]:
    kwargs = {swift: setting(data, key) for key, swift in _KWARGS.items()}
    if isinstance(kwargs["columns"], str):
        kwargs["columns"] = json.loads(kwargs["columns"])
    kwargs["use_hf"] = use_hf(data)
    return kwargs


def is_hub(entry: str) -> bool:
    """swift's reading: an entry naming no existing file or directory is a hub id."""
    from swift.dataset.dataset_syntax import DatasetSyntax
    syntax = DatasetSyntax.parse(entry)
    return not os.path.exists(syntax.dataset)


def offline_problem(entries: list[str], data: dict[str, Any]) -> str | None:
    """HF_*_OFFLINE stops modelscope's dataset loader (it runs through `datasets`) for every ModelScope id."""
    on = [v for v in OFFLINE_VARS if os.environ.get(v, "").strip() not in ("", "0", "false", "False")]
    ms = [e for e in entries if is_hub(e) and not (e.lower().startswith("hf::") or use_hf(data)
                                                   and not e.lower().startswith("ms::"))]
    if on and ms:
        return (f"{ms[0]}: {'/'.join(on)} is set, and modelscope's dataset loader then refuses every ModelScope "
                f"dataset (\"Couldn't reach the Hugging Face Hub\"); fix: unset {' '.join(on)} for this command")
    return None


@dataclass
class Part:
    """One subset x split of an entry as swift's loader yields it (a local file is one part)."""
    subset: str
    split: str
    dataset: Any          # datasets.Dataset


@dataclass
class Entry:
    text: str             # as the recipe writes it
    dataset_id: str       # what swift loads: the hub id or the path
    source: str           # "ModelScope" | "Hugging Face" | "local"
    sample: int | None    # the #N
    parts: list[Part]


@contextlib.contextmanager
def _quiet_swift() -> Iterator[None]:
    """swift logs every retry of a failed download as an error: the one line DataLoadError says is enough."""
    from swift.utils import get_logger
    logger = get_logger()
    level = logger.level
    logger.setLevel(100)
    try:
        yield
    finally:
        logger.setLevel(level)


def _endpoint(hf: bool) -> str:
    if hf:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    return os.environ.get("MODELSCOPE_ENDPOINT", "https://www.modelscope.cn")


def _translate(e: Exception, entry: str, hf: bool, subsets: list[str] | None) -> DataLoadError:
    hub = "Hugging Face" if hf else "ModelScope"
    text = " ".join(str(e).split())
    name = type(e).__name__
    if name in ("NetworkError", "ConnectionError", "ConnectTimeout", "ReadTimeout", "ChunkedEncodingError",
                "ProtocolError", "RemoteDisconnected", "MaxRetryError") or isinstance(e, (ConnectionError, TimeoutError)):
        short = "connection refused" if "refused" in text.lower() else text[:160]
        return DataLoadError(f"{entry}: cannot load it from the {hub} hub at {_endpoint(hf)} ({short}), and it is not "
                             f"in the local cache; fix: connect to the hub and retry, or point the recipe at a "
                             f"local JSONL (python -m data_tools convert)")
    if name == "NotExistError" or "404" in text and "not found" in text:
        return DataLoadError(f"{entry}: no such dataset on the {hub} hub at {_endpoint(hf)}; fix: check the id "
                             f"(and ms::/hf::, use_hf)")
    if "config" in text.lower() and subsets:
        return DataLoadError(f"{entry}: the hub has no subset {'/'.join(subsets)!r}; fix: name one of the dataset's "
                             f"subsets ({text[:200]})")
    if "Couldn't reach" in text or "Offline mode" in text:
        return DataLoadError(f"{entry}: {text[:200]}; fix: unset {' '.join(OFFLINE_VARS)}")
    status = next((s for s in ("500", "502", "503", "504") if s in text), None)
    if status:
        return DataLoadError(f"{entry}: the {hub} hub at {_endpoint(hf)} answered {status} while downloading it "
                             f"(swift tried 3 times); nothing was launched; fix: retry later")
    return DataLoadError(f"{entry}: swift cannot load it: {name}: {text[:240]}")


def _broken_downloads(since: float) -> list[tuple[str, bytes]]:
    """modelscope's dataset downloader stores a hub error reply (a 500's JSON body) as the parquet file it
    asked for, and every later load then fails on that cached file. Remove such downloads made since
    `since`; return (file, reply) for each."""
    from modelscope.hub.utils.utils import get_cache_dir
    from urllib.parse import parse_qs, urlparse
    found = []
    for meta in (Path(get_cache_dir()) / "datasets" / "downloads").glob("*.json"):
        blob = meta.with_suffix("")
        try:
            if meta.stat().st_mtime < since - 1 or not blob.is_file():
                continue
            url = json.loads(meta.read_text()).get("url", "")
            wanted = (parse_qs(urlparse(url).query).get("FilePath") or [urlparse(url).path])[0]
            if not wanted.endswith(".parquet"):
                continue
            with open(blob, "rb") as f:
                head = f.read(4)
                f.seek(max(0, blob.stat().st_size - 4))
                tail = f.read(4)
            if head == tail == b"PAR1":
                continue
            reply = blob.read_bytes()[:200]
            for p in (blob, meta, Path(str(blob) + ".lock")):
                p.unlink(missing_ok=True)
            found.append((wanted, reply))
        except (OSError, ValueError):
            continue
    return found


def _meta(syntax, hf: bool):
    """swift's load_dataset's own lookup: a registered dataset name, else the id's registration, else defaults."""
    from swift.dataset import DATASET_MAPPING
    if syntax.dataset in DATASET_MAPPING:
        meta = DATASET_MAPPING[syntax.dataset]
        if syntax.use_hf is None and meta.dataset_path is not None:
            syntax.dataset, syntax.dataset_type = meta.dataset_path, "path"
        else:
            syntax.dataset = meta.hf_dataset_id if hf else meta.ms_dataset_id
        return meta
    return syntax.get_dataset_meta(hf)


def load_entry(entry: str, data: dict[str, Any]) -> Entry:
    """One dataset entry, each subset and split loaded separately by swift's loader (before any sampling)."""
    from swift.dataset.dataset_syntax import DatasetSyntax
    kwargs = dataset_kwargs(data)
    split_views.register([entry])
    syntax = DatasetSyntax.parse(entry)
    hf = syntax.use_hf if syntax.use_hf is not None else kwargs["use_hf"]
    meta = _meta(syntax, hf)
    loader = meta.loader(**{k: kwargs[k] for k in ("num_proc", "load_from_cache_file", "streaming", "strict",
                                                   "download_mode", "columns", "remove_unused_columns",
                                                   "disable_auto_column_mapping")})
    if syntax.dataset_type == "path":
        return Entry(entry, syntax.dataset, "local", syntax.dataset_sample,
                     [Part("", "file", loader.load(syntax, meta, use_hf=hf))])
    names = [s.name for s in meta.subsets]
    wanted = syntax.subsets
    if meta.ms_dataset_id or meta.hf_dataset_id:     # registered: swift knows the subsets
        unknown = [s for s in wanted if s not in names and s != "all"]
        if unknown:
            raise DataLoadError(f"{entry}: {syntax.dataset} has no subset {unknown[0]!r} in swift's registration; "
                                f"its subsets: {', '.join(names)}")
    try:
        subsets = loader._select_subsets(wanted, meta)
    except ValueError as e:
        raise DataLoadError(f"{entry}: {e}") from None
    source = "local" if os.path.isdir(syntax.dataset) else ("Hugging Face" if hf else "ModelScope")
    revision = meta.hf_revision if hf else meta.ms_revision
    parts = []
    started = time.time()
    with _quiet_swift():
        for subset in subsets:
            for split in subset.split:
                try:
                    ds = loader._load_repo_dataset(syntax.dataset, replace(subset, split=[split]), use_hf=hf,
                                                   revision=revision)
                except DataLoadError:
                    raise
                except Exception as e:  # noqa: BLE001 - the hub client, datasets and swift raise anything
                    broken = _broken_downloads(started)
                    if broken:
                        name, reply = broken[0]
                        shown = " ".join(reply.decode("utf-8", "replace").split())[:120]
                        raise DataLoadError(f"{entry}: the {source} hub at {_endpoint(hf)} sent an error reply "
                                            f"instead of {name} ({shown!r}); the broken download was removed from "
                                            f"the cache and nothing was launched; fix: retry") from None
                    raise _translate(e, entry, hf, wanted) from None
                parts.append(Part(subset.name, split, ds))
    return Entry(entry, syntax.dataset, source, syntax.dataset_sample, parts)


def load_like_sft(data: dict[str, Any]) -> tuple[Any, Any]:
    """(train, eval) exactly as `swift sft` builds them from these arguments (BaseArguments.load_dataset)."""
    from swift.dataset import load_dataset
    kwargs = dataset_kwargs(data)
    entries = list(data.get("dataset") or [])
    val_entries = list(data.get("val_dataset") or [])
    split_views.register(entries + val_entries)
    train, val = None, None
    with _quiet_swift():
        try:
            if entries:
                train, val = load_dataset(entries, split_dataset_ratio=setting(data, "split_dataset_ratio"),
                                          shuffle=setting(data, "dataset_shuffle"), **kwargs)
            if val_entries:
                kwargs.pop("interleave_prob", None)
                _, val = load_dataset(val_entries, split_dataset_ratio=1.0,
                                      shuffle=setting(data, "val_dataset_shuffle"), **kwargs)
        except DataLoadError:
            raise
        except Exception as e:  # noqa: BLE001
            raise _translate(e, ", ".join(entries + val_entries), kwargs["use_hf"], None) from None
    return train, val


def load_rows(entry: str, data: dict[str, Any]) -> Any:
    """All rows of one entry (e.g. `ID@test:subset`), as swift loads it for evaluation: no held-out split."""
    from swift.dataset import load_dataset
    kwargs = dataset_kwargs(data)
    kwargs.pop("interleave_prob", None)
    split_views.register([entry])
    with _quiet_swift():
        try:
            _, rows = load_dataset([entry], split_dataset_ratio=1.0, shuffle=False, **kwargs)
        except Exception as e:  # noqa: BLE001
            raise _translate(e, entry, kwargs["use_hf"], None) from None
    return rows


def image_refs(row: dict[str, Any]) -> list[bytes | str | tuple[int, int]]:
    """A loaded row's images as data_tools takes them: bytes, a path, or the size of a decoded image."""
    out = []
    for im in row.get("images") or []:
        if isinstance(im, dict):
            out.append(im["bytes"] if im.get("bytes") is not None else im.get("path"))
        elif isinstance(im, (str, bytes)):
            out.append(im)
        else:                                     # a PIL image
            out.append(tuple(im.size))
    return out


def image_bytes(ref: bytes | str | tuple[int, int], row_image: Any) -> bytes:
    if isinstance(ref, bytes):
        return ref
    if isinstance(ref, str):
        return Path(ref).read_bytes()
    return row_image.tobytes()


def export_rows(rows: Any, dest: Path) -> Path:
    """Loaded rows as a messages/images JSONL (images written next to it): what infer.py reads.

    Written under a temporary name and renamed, so an interrupted export leaves no half file."""
    from ..fileio import atomic_write_text
    images = dest / "images"
    images.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, row in enumerate(rows):
        paths = []
        for j, (ref, im) in enumerate(zip(image_refs(row), row.get("images") or [])):
            if isinstance(ref, str):
                paths.append(str(Path(ref).resolve()))
                continue
            path = images / f"{i:06d}-{j}.png"
            if isinstance(ref, bytes):
                path = path.with_suffix(_suffix(ref))
                path.write_bytes(ref)
            else:
                im.save(path)
            paths.append(str(path))
        lines.append(json.dumps({"messages": row["messages"], "images": paths, **_carried(row)}, ensure_ascii=False))
    out = dest / "rows.jsonl"
    atomic_write_text(out, "\n".join(lines) + "\n")
    return out


def _carried(row: dict[str, Any]) -> dict[str, Any]:
    """A row's grounding objects and video paths, which infer.py passes to swift as training did. The loader's
    columns give rows without them None-filled objects: those are left out."""
    out: dict[str, Any] = {}
    objects = row.get("objects")
    if isinstance(objects, dict) and isinstance(objects.get("bbox"), list):
        out["objects"] = {k: v for k, v in objects.items() if v is not None}
    videos = [v for v in row.get("videos") or [] if isinstance(v, str)]
    if videos:
        out["videos"] = videos
    return out


def _suffix(data: bytes) -> str:
    if data[:3] == b"\xff\xd8\xff":
        return ".jpg"
    if data[:4] == b"RIFF":
        return ".webp"
    return ".png" if data[:4] == b"\x89PNG" else ".img"
