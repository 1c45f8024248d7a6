"""Serve a checkpoint behind an OpenAI-compatible API through `swift deploy`, with the run's own settings.

swift deploy restores neither max_length nor the InternVL tiling from a checkpoint (the same gap as
swift infer), so the server is started with the run's template, max_length, tiling variables and,
on the -HF route, the plugin that makes max_num apply; and a plugin that tells a request with a bad image
which image and why (deploy_plugin). Local image paths in requests are allowed only
on a loopback host unless --media-dir names where they may come from (swift's SWIFT_MEDIA_ALLOWED_DIRS).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from .checkpoint import CheckpointInfo
from ..train.supervise import say, stop_group, stop_signals, supervised
from ..train.swift_cmd import PLUGIN_PATH, SwiftCommand

DEPLOY_PLUGIN_PATH = Path(__file__).with_name("deploy_plugin.py")
LOOPBACK = ("127.0.0.1", "localhost", "::1")
READY_TIMEOUT_S = 600


def deploy_command(info: CheckpointInfo, adapter: str | None, host: str, port: int,
                   media_dir: str | None = None) -> SwiftCommand:
    args = ["--model", info.base_model, "--model_type", info.model_type, "--template", info.template,
            "--host", host, "--port", str(port), "--served_model_name", served_name(info)]
    if adapter:
        args += ["--adapters", adapter]
    if info.max_length:
        args += ["--max_length", str(info.max_length)]
    dtype = (info.recipe or {}).get("torch_dtype")
    if dtype:
        args += ["--torch_dtype", dtype]
    plugins = [DEPLOY_PLUGIN_PATH]                              # clear answers for bad images in requests
    if info.template == "internvl_hf" and "max_num" in info.knobs:
        plugins.append(PLUGIN_PATH)
    args += ["--external_plugins", *map(str, plugins)]          # one flag: a second would replace the first
    env = dict(info.env)
    if media_dir is not None:
        env["SWIFT_MEDIA_ALLOWED_DIRS"] = str(Path(media_dir).resolve())
    elif host not in LOOPBACK:     # reachable by others: no local files at all (an empty allowed directory)
        env["SWIFT_MEDIA_ALLOWED_DIRS"] = tempfile.mkdtemp(prefix="no-local-media-")
    return SwiftCommand("deploy", args, env)


def served_name(info: CheckpointInfo) -> str:
    return (info.record or {}).get("recipe_name") or info.path.name


def client_example(base_url: str, model: str) -> str:
    return f'''from openai import OpenAI
client = OpenAI(base_url="{base_url}", api_key="EMPTY")
reply = client.chat.completions.create(model="{model}", messages=[{{"role": "user", "content": [
    {{"type": "image_url", "image_url": {{"url": "https://.../image.png"}}}},   # or data:image/png;base64,...
    {{"type": "text", "text": "Describe the image."}}]}}], temperature=0)
print(reply.choices[0].message.content)'''


def _ready(base_url: str) -> list[str] | None:
    """The served model ids once the server answers, else None."""
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return [m["id"] for m in json.loads(resp.read())["data"]]
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


def _port_taken(host: str, port: int) -> str | None:
    """Why host:port cannot be bound now (another server holds it), else None."""
    import socket
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)      # as uvicorn binds: TIME_WAIT is free
        try:
            sock.bind((host, port))
        except OSError as e:
            return e.strerror or str(e)
    return None


def serve(info: CheckpointInfo, adapter: str | None, host: str, port: int, media_dir: str | None) -> int:
    """Run swift deploy until Ctrl-C or SIGTERM (exit 130) or until it stops on its own (its exit code)."""
    busy = _port_taken(host, port)
    if busy:                 # else the readiness probe would find that other server and call it ours
        say(f"error: {host}:{port} is already in use ({busy}); pick a free one with --port", file=sys.stderr)
        return 1
    cmd = deploy_command(info, adapter, host, port, media_dir)
    env = {k: v for k, v in os.environ.items() if k != "MODELSCOPE_API_TOKEN"}   # swift would log in with it
    log_path = Path(tempfile.mkstemp(prefix="swift-deploy-", suffix=".log")[1])
    say(f"# command:\n{cmd.shell()}\n# swift's log: {log_path}")
    with open(log_path, "wb") as log, supervised(cmd.argv(), grace=15.0, env={**env, **cmd.env, "PYTHONUNBUFFERED": "1"},
                                                 stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL) as proc:
        shown_host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        base_url = f"http://{shown_host}:{port}/v1"
        start = time.perf_counter()
        with stop_signals():                  # Ctrl-C, a scheduler's SIGTERM, a closed terminal's SIGHUP
            try:
                say(f"[serve] starting swift deploy on {host}:{port} ...")
                models = None
                while models is None and proc.poll() is None and time.perf_counter() - start < READY_TIMEOUT_S:
                    time.sleep(0.5)
                    models = _ready(base_url)
                if models is None:
                    stop_group(proc, grace=15.0)
                    tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-30:]
                    say(f"error: swift deploy did not come up (exit {proc.returncode}); last lines of {log_path}:\n  "
                        + "\n  ".join(tail), file=sys.stderr)
                    return 1
                say(f"[serve] ready in {time.perf_counter() - start:.1f} s: {base_url} (models: {', '.join(models)})\n"
                    f"[serve] Ctrl-C stops it. Client example:\n{client_example(base_url, models[-1])}")
                return proc.wait()
            except KeyboardInterrupt:
                stop_group(proc, grace=15.0)      # first the server, then the words
                say("[serve] stopped")
                return 130
