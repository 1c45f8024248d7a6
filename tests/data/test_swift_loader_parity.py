"""swift is the oracle for what a dataset row *is*: a corpus of edge rows and files goes through swift's own
loading path (`swift.dataset.load_dataset`, then `template.encode` with the tiny models) and through
data_tools' Validator (and so train.py's preflight); both must give the same verdict for every row, and
equal token counts for every accepted one, for the internvl_hf, internvl2_5 and internvl3_5 templates
(the -HF model's tokenizer and the chat models' tokenizers).

One row per file, so swift's per-dataset `dataset` column maps its rows back. What validate still refuses
although swift takes it (the formats swift converts itself, OpenAI content lists, consecutive user turns,
`<img>` tags, a conversation ending on the user) is left out of the corpus and listed in issue 11.
"""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

import pytest
from PIL import Image

from data_tools.tokens import Counter, TilingConfig
from data_tools.validate import Options, Report, Validator

SIZES = [(64, 48), (48, 64), (56, 56), (200, 30), (30, 200), (500, 400), (1000, 100), (112, 56)]
TEMPLATES = [("internvl_hf", "builtin:tiny-internvl-hf", None, None), ("internvl2_5", "builtin:tiny-internvl3", 6, 56),
             ("internvl3_5", "builtin:tiny-internvl3_5", 6, 56)]


def _png(size, fmt="PNG", color="red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, fmt)
    return buf.getvalue()


def _gif_frame_beyond_screen(screen, frame) -> bytes:
    """A GIF whose logical screen is `screen` but whose one frame is `frame` (both occur in the wild):
    Pillow's own GIF with the screen size in its header rewritten."""
    img = Image.new("P", frame, 0)
    img.putpalette([255, 0, 0, 0, 0, 0])
    buf = io.BytesIO()
    img.save(buf, "GIF")
    data = bytearray(buf.getvalue())
    data[6:10] = screen[0].to_bytes(2, "little") + screen[1].to_bytes(2, "little")
    return bytes(data)


class Corpus:
    """Writes one dataset file per case into `root/data`; images under root/{abs,imgroot,home,cwd}."""

    def __init__(self, root: Path):
        self.root = root
        self.cases: list[tuple[str, Path]] = []
        for d in ("data", "abs", "imgroot", "home", "cwd", "imgroot/httpimg"):
            (root / d).mkdir(parents=True, exist_ok=True)
        self.n = 0

    def image(self, where: str, size, fmt="PNG") -> Path:
        self.n += 1
        ext = {"PNG": "png", "JPEG": "jpg", "GIF": "gif", "BMP": "bmp", "WEBP": "webp"}[fmt]
        path = self.root / where / f"im{self.n}.{ext}"
        path.write_bytes(_png(size, fmt))
        return path

    def add(self, name: str, row=None, raw: bytes | None = None, suffix: str = ".jsonl") -> None:
        path = self.root / "data" / f"{len(self.cases):04d}-{name}{suffix}"
        path.write_bytes(raw if raw is not None else (json.dumps(row, ensure_ascii=False) + "\n").encode())
        self.cases.append((name, path))


def _msgs(user: str, answer: str = "x^{2}", system: str | None = None, turns: int = 1) -> list[dict]:
    out = [{"role": "system", "content": system}] if system is not None else []
    for t in range(turns):
        out += [{"role": "user", "content": user if t == 0 else f"and {t}?"},
                {"role": "assistant", "content": answer if t == 0 else f"answer {t}"}]
    return out


def build_corpus(c: Corpus) -> None:
    for i, size in enumerate(SIZES):
        q = "<image>Using LaTeX to perform OCR on the image."
        p = c.image("abs", size)
        c.add("path-list", {"messages": _msgs(q), "images": [str(p)]})
        c.add("path-alone", {"messages": _msgs(q), "images": str(c.image("abs", size))})
        c.add("dict-alone", {"messages": _msgs(q), "images": {"path": str(c.image("abs", size))}})
        c.add("dict-list", {"messages": _msgs(q), "images": [{"path": str(c.image("abs", size))}]})
        c.add("spaces", {"messages": _msgs(q), "images": [f"  {c.image('abs', size)} "]})
        c.add("tilde", {"messages": _msgs(q), "images": [f"~/{c.image('home', size).name}"]})
        c.add("root-image-dir", {"messages": _msgs(q), "images": [c.image("imgroot", size).name]})
        c.add("cwd-relative", {"messages": _msgs(q), "images": [f"cwd/{c.image('cwd', size).name}"]})
        c.add("base64", {"messages": _msgs(q), "images": [base64.b64encode(_png(size)).decode()]})
        c.add("data-uri", {"messages": _msgs(q), "images": ["data:image/png;base64,"
                                                            + base64.b64encode(_png(size)).decode()]})
        c.add("data-uri-jpeg", {"messages": _msgs(q), "images": ["data:image/jpeg;base64,"
                                                                 + base64.b64encode(_png(size, "JPEG")).decode()]})
        for fmt in ("JPEG", "GIF", "BMP", "WEBP"):
            c.add(f"format-{fmt}", {"messages": _msgs(q), "images": [str(c.image("abs", size, fmt))]})
        c.add("two-images", {"messages": _msgs("<image> vs <image>: same?"),
                             "images": [str(p), str(c.image("abs", SIZES[-1 - i]))]})
        c.add("missing-tag", {"messages": _msgs("no tag here"), "images": [str(p)]})
        c.add("tag-later-turn", {"messages": _msgs("hello", turns=2)[:2] + [
            {"role": "user", "content": "<image>and this?"}, {"role": "assistant", "content": "a square"}],
            "images": [str(p)]})
        c.add("system", {"messages": _msgs(q, system="Be brief."), "images": [str(p)]})
        c.add("system-empty", {"messages": _msgs(q, system=""), "images": [str(p)]})
        c.add("multi-turn", {"messages": _msgs(q, turns=3), "images": [str(p)]})
        c.add("empty-user", {"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "ok"}]})
        c.add("unicode", {"messages": _msgs("<image>公式 ¾ ≈", answer="x_{5} ≈ ¾ 公式"), "images": [str(p)]})
        # wrongly formed: swift drops or fails on these
        c.add("missing-file", {"messages": _msgs(q), "images": [str(c.root / "abs" / f"gone{i}.png")]})
        c.add("missing-relative", {"messages": _msgs(q), "images": [f"nowhere/gone{i}.png"]})
        c.add("http-relative", {"messages": _msgs(q), "images": [f"httpimg/{c.image('imgroot/httpimg', size).name}"]})
        c.add("data-uri-garbage", {"messages": _msgs(q), "images": [f"data:image/png;base64,@@{i}@@"]})
        c.add("base64-not-image", {"messages": _msgs(q), "images": [base64.b64encode(b"not an image %d" % i).decode()]})
        (c.root / "data" / f"beside{i}.png").write_bytes(_png(size))
        c.add("dataset-relative", {"messages": _msgs(q), "images": [f"beside{i}.png"]})
        text = c.root / "abs" / f"text{i}.png"
        text.write_text("not an image")
        c.add("not-an-image", {"messages": _msgs(q), "images": [str(text)]})
    for i, size in enumerate(SIZES[:6]):
        p = str(c.image("abs", size))
        conv = [{"from": "human", "value": "<image>what is it?"}, {"from": "gpt", "value": f"shape {i}"}]
        c.add("sharegpt", {"conversations": conv, "images": [p]})
        c.add("sharegpt-system", {"conversations": conv, "system": "Be brief.", "images": [p]})
        c.add("messages-from-value", {"messages": conv, "image": p})
        c.add("messages-json-string", {"messages": json.dumps(_msgs("<image>read")), "images": [p]})
        c.add("pairs", {"messages": [{"user": "<image>hi", "assistant": "ok"}, {"human": "more", "bot": "no"}],
                        "images": [p]})
        c.add("alpaca", {"instruction": "<image>Describe.", "input": f"part {i}", "output": "a red box", "images": [p]})
        c.add("alpaca-no-input", {"instruction": "Say hi.", "input": "", "output": "hi"})
        c.add("alpaca-history", {"instruction": "go on", "input": "x", "output": "y", "history": [["a", "b"]],
                                 "system": "S."})
        c.add("query-response", {"query": "<image>what?", "response": "this", "images": [p]})
        c.add("query-history", {"query": "q", "response": "r", "history": [["a", "b"], ["c", "d"]], "system": "S."})
        c.add("question-answer", {"question": "<image>q?", "answer": ["first", "second"], "image": p})
        c.add("history-string", {"query": "q", "response": "r", "history": "[['a', 'b']]"})
        c.add("openai-content", {"messages": [{"role": "user", "content": [
            {"type": "image", "image": p}, {"type": "text", "text": "what is it?"}]},
            {"role": "assistant", "content": "a box"}]})
        c.add("openai-image-url", {"messages": [{"role": "user", "content": [
            {"type": "text", "text": "look: "}, {"type": "image_url", "image_url": {"url": p}}]},
            {"role": "assistant", "content": "a box"}]})
        c.add("anthropic-image", {"messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                                         "data": base64.b64encode(_png(size)).decode()}},
            {"type": "text", "text": "what is it?"}]}, {"role": "assistant", "content": "a box"}]})
        c.add("two-users", {"messages": [{"role": "user", "content": "<image>hi"},
                                         {"role": "user", "content": " there"},
                                         {"role": "assistant", "content": "ok"}], "images": [p]})
        c.add("two-answers", {"messages": [{"role": "user", "content": "<image>hi"},
                                           {"role": "assistant", "content": f"first {i}."},
                                           {"role": "assistant", "content": " second"}], "images": [p]})
        c.add("img-tag", {"messages": _msgs(f"<img>{p}</img>read it")})
        c.add("loss-false", {"messages": [{"role": "user", "content": "<image>q"},
                                          {"role": "assistant", "content": f"not this {i}", "loss": False},
                                          {"role": "user", "content": "again"},
                                          {"role": "assistant", "content": "this", "loss": True}], "images": [p]})
        c.add("loss-false-last", {"messages": [{"role": "user", "content": "q"},
                                               {"role": "assistant", "content": f"x {i}", "loss": False}]})
        c.add("ends-with-im-end", {"messages": _msgs("<image>q", answer=f"done {i}<|im_end|>"), "images": [p]})
        c.add("tools", {"messages": _msgs("what's the weather?"), "tools": [{"type": "function", "function": {
            "name": "weather", "description": "get it", "parameters": {"type": "object", "properties": {}}}}]})
        # swift drops these
        c.add("content-null", {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": None}]})
        c.add("unknown-role", {"messages": [{"role": "narrator", "content": "hi"},
                                            {"role": "assistant", "content": "x"}]})
        c.add("messages-empty", {"messages": [], "images": [p]})
        c.add("content-list-and-images", {"messages": [{"role": "user", "content": [
            {"type": "image", "image": p}, {"type": "text", "text": "q"}]}, {"role": "assistant", "content": "a"}],
            "images": [p]})
    for screen, frame in [((0, 0), (64, 48)), ((32, 24), (300, 60)), ((64, 48), (64, 48))]:
        gif = c.root / "abs" / f"gif-{screen[0]}x{screen[1]}-{frame[0]}x{frame[1]}.gif"
        gif.write_bytes(_gif_frame_beyond_screen(screen, frame))
        c.add("gif-screen", {"messages": _msgs("<image>read"), "images": [str(gif)]})
    row = {"messages": _msgs("<image>read"), "images": [str(c.image("abs", (64, 48)))]}
    c.add("bom", raw=b"\xef\xbb\xbf" + json.dumps(row).encode() + b"\n")
    c.add("json-array", raw=json.dumps([row]).encode(), suffix=".json")
    c.add("json-array-pretty", raw=json.dumps([row], indent=2).encode(), suffix=".json")
    c.add("images-null", {"messages": _msgs("hello"), "images": None})


def swift_verdicts(files: list[Path], chunk: int = 25) -> dict[str, dict | None]:
    """file -> swift's loaded row; None where swift dropped it, or where loading that file alone fails (a
    file whose only row is dropped stops swift's loader: ZeroDivisionError in its dataset sampling)."""
    from swift.dataset import load_dataset
    out: dict[str, dict | None] = {str(f): None for f in files}
    for start in range(0, len(files), chunk):
        part = files[start:start + chunk]
        try:
            ds, _ = load_dataset([str(f) for f in part], num_proc=1, load_from_cache_file=False)
        except Exception:  # noqa: BLE001 - one bad file fails the lot: then file by file
            if len(part) == 1:
                continue
            out.update(swift_verdicts(part, chunk=1))
            continue
        for row in ds:
            out[row["dataset"]] = dict(row)
    return out


def swift_tokens(template, row: dict | None) -> int | None:
    if row is None:
        return None
    try:
        return len(template.encode({k: v for k, v in row.items() if k != "dataset"})["input_ids"])
    except Exception:  # noqa: BLE001 - any failure is swift refusing the row
        return None


def ours(validator: Validator, path: Path) -> tuple[int | None, list[str]]:
    report, issues = Report(), []
    validator.validate_file(path, report, issues.append)
    errors = [str(i) for i in issues if i.severity == "error"]
    return (report.lengths[0] if not errors and report.lengths else None), errors


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("parity")
    c = Corpus(root)
    build_corpus(c)
    return c


@pytest.fixture
def corpus_env(corpus, monkeypatch):
    """swift and validate resolve relative paths, `~` and ROOT_IMAGE_DIR from the same place."""
    monkeypatch.chdir(corpus.root)
    monkeypatch.setenv("HOME", str(corpus.root / "home"))
    monkeypatch.setenv("ROOT_IMAGE_DIR", str(corpus.root / "imgroot"))
    return monkeypatch


def set_template(monkeypatch, template: str):
    """swift's template for the tiny model of `template`, and the toolkit's Counter for the same settings."""
    from swift import get_processor, get_template

    from internvl_kit.models import builtin
    _, model, max_num, input_size = next(t for t in TEMPLATES if t[0] == template)
    if max_num:
        monkeypatch.setenv("MAX_NUM", str(max_num))
        monkeypatch.setenv("INPUT_SIZE", str(input_size))
    else:
        monkeypatch.delenv("MAX_NUM", raising=False)
        monkeypatch.delenv("INPUT_SIZE", raising=False)
    model_dir = builtin.resolve(model)
    kw = {"model_type": "internvl"} if template == "internvl_hf" else {}
    tpl = get_template(get_processor(str(model_dir), download_model=False, **kw), template_type=template)
    tpl.set_mode("train")
    return tpl, Counter(template, TilingConfig.for_model(model_dir, template, max_num, input_size), model_dir)


def test_validate_agrees_with_swift_loader(corpus, corpus_env):
    root = corpus.root
    assert len(corpus.cases) >= 200
    loaded = swift_verdicts([p for _, p in corpus.cases])
    empty = root / "data" / "empty.jsonl"
    empty.write_text("\n")
    from swift.dataset import load_dataset
    with pytest.raises(Exception):                  # swift's loader stops on an empty file ...
        load_dataset([str(empty)], num_proc=1, load_from_cache_file=False)
    assert ours(Validator(Options()), empty)[1]     # ... validate says so
    mismatches = []
    for template, *_ in TEMPLATES:
        tpl, counter = set_template(corpus_env, template)
        validator = Validator(Options(counter=counter))
        verdicts = {}
        for name, path in corpus.cases:
            want = swift_tokens(tpl, loaded[str(path)])
            got, errors = ours(validator, path)
            verdicts.setdefault(name, set()).add(want is not None)
            if want != got:
                mismatches.append(f"{template} {path.name}: swift {want}, validate {got} {errors[:1]}")
        accepted = {n for n, v in verdicts.items() if v == {True}}
        refused = {n for n, v in verdicts.items() if v == {False}}
        # The corpus means something: these forms are swift's to take, those swift's to refuse. (`~/x`
        # is refused here: with ROOT_IMAGE_DIR set swift joins first, and "ROOT/~/x" has no ~ to expand.)
        assert {"path-alone", "dict-alone", "spaces", "cwd-relative", "root-image-dir", "base64", "data-uri",
                "bom", "json-array", "system-empty", "empty-user", "images-null", "format-GIF", "sharegpt", "alpaca",
                "query-history", "openai-content", "anthropic-image", "two-users", "two-answers", "img-tag",
                "loss-false", "ends-with-im-end"} <= accepted, template
        assert {"missing-file", "http-relative", "data-uri-garbage", "base64-not-image", "dataset-relative",
                "not-an-image", "tilde", "content-null", "unknown-role", "tools"} <= refused, template
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:40])
    # Without ROOT_IMAGE_DIR swift expands `~/x` (with it, it joins first): both sides agree again.
    corpus_env.delenv("ROOT_IMAGE_DIR")
    tpl, counter = set_template(corpus_env, "internvl3_5")
    validator = Validator(Options(counter=counter))
    for path in [p for n, p in corpus.cases if n == "tilde"]:
        want = swift_tokens(tpl, loaded[str(path)])
        assert want is not None and ours(validator, path)[0] == want, path


def test_preflight_accepts_what_swift_accepts(corpus, corpus_env):
    """train.py's preflight runs the same checks: every corpus file swift takes passes it, the others stop it."""
    from internvl_kit.models import builtin
    from internvl_kit.train import preflight
    tpl, _ = set_template(corpus_env, "internvl3_5")
    loaded = swift_verdicts([p for _, p in corpus.cases])
    ok = {str(p): swift_tokens(tpl, loaded[str(p)]) is not None for _, p in corpus.cases}
    data = {"model": str(builtin.resolve("builtin:tiny-internvl3_5")), "template": "internvl3_5",
            "max_length": 100_000}
    knobs = {"max_num": 6, "input_size": 56}
    findings = preflight.check_data({**data, "dataset": [p for p, good in ok.items() if good]}, knobs, set())
    assert not [f for f in findings if f.severity == "error"], findings[:5]
    for path in [p for p, good in ok.items() if not good][::7]:
        findings = preflight.check_data({**data, "dataset": [path]}, knobs, set())
        assert any(f.severity == "error" for f in findings), path
