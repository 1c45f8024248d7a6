"""infer.py --serve on both routes: an OpenAI-compatible server (swift deploy) with the run's settings,
talked to with the official openai client, answering as infer.py does, and leaving no server behind when
stopped by Ctrl-C, by SIGHUP after its reader left, or by SIGKILL."""
from __future__ import annotations

import base64
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, run_cli

pytestmark = pytest.mark.e2e


def _free_port() -> int:
    import socket
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(overfit_run):
    """One server per variant, shared by this module's tests (the last one stops it with Ctrl-C)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "infer.py", str(overfit_run["checkpoint"]), "--serve", "--port",
                             str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    deadline = time.time() + 300
    for line in proc.stdout:                        # up to the last line of the printed client example
        lines.append(line)
        if line.startswith("print(reply") or time.time() > deadline:
            break
    assert any(x.startswith("[serve] ready") for x in lines), "".join(lines)[-3000:]
    yield {"proc": proc, "port": port, "lines": lines, "base_url": f"http://127.0.0.1:{port}/v1"}
    if proc.poll() is None:          # Ctrl-C, as a user would: infer.py stops swift deploy's whole group
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_readme_client_snippet_runs_against_the_server(overfit_run, server):
    readme = (ROOT / "README.md").read_text()
    code = re.search(r"<!-- serve-client -->\n```python\n(.*?)```", readme, re.S).group(1)
    red = overfit_run["root"] / "red.png"
    code = (code.replace("http://127.0.0.1:8000/v1", server["base_url"]).replace('"shape.png"', f'"{red}"')
            .replace('"What shape is in the picture, and what colour is it?"', '"Colour?"'))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "red"


def test_a_second_server_on_a_taken_port_is_refused_not_mistaken_for_ready(overfit_run, server):
    """Its readiness probe would otherwise find the first server's answers and report them as its own."""
    out = run_cli("infer.py", str(overfit_run["checkpoint"]), "--serve", "--port", str(server["port"]))
    assert out.returncode == 1 and f"127.0.0.1:{server['port']} is already in use" in out.stderr, out.stderr
    assert "[serve] ready" not in out.stdout


def test_openai_client_gets_infer_py_answers_streams_and_a_4xx_for_a_bad_image(overfit_run, server):
    from openai import OpenAI, UnprocessableEntityError
    red = overfit_run["root"] / "red.png"
    expected = run_cli("infer.py", str(overfit_run["checkpoint"]), "--image", str(red), "--prompt", "Colour?",
                       "--max-new-tokens", "8").stdout.strip().splitlines()[-1]
    printed = "".join(server["lines"])
    assert f"http://127.0.0.1:{server['port']}/v1" in printed and "from openai import OpenAI" in printed
    if not overfit_run["variant"].is_hf:                     # the run's tiling reaches swift deploy
        assert "INPUT_SIZE=56 MAX_NUM=2 swift deploy" in printed
    client = OpenAI(base_url=server["base_url"], api_key="EMPTY")
    (model,) = [m.id for m in client.models.list().data]

    def ask(url: str, **kw):
        return client.chat.completions.create(model=model, temperature=0, max_tokens=8, messages=[
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}},
                                         {"type": "text", "text": "Colour?"}]}], **kw)

    assert ask(str(red)).choices[0].message.content == expected == "red"
    data_uri = "data:image/png;base64," + base64.b64encode(red.read_bytes()).decode()
    assert ask(data_uri).choices[0].message.content == expected
    assert "".join(c.choices[0].delta.content or "" for c in ask(str(red), stream=True)) == expected
    # A bad image is refused with which image, what was sent and why (swift alone: "value: PATH", or
    # Pillow's "cannot identify image file <_io.BytesIO object at 0x...>" naming neither)
    broken = overfit_run["root"] / "broken.png"
    broken.write_bytes(red.read_bytes()[:40])
    junk = "data:image/png;base64," + base64.b64encode(b"not an image").decode()
    for url, why in (("/no/such/image.png", "is not a file on the server"),
                     (str(broken), "(a file of 40 bytes) is not an image Pillow can decode"),
                     (junk, "(12 bytes once decoded) is not an image Pillow can decode"),
                     ("data:image/png,abc", "a data: URI must read data:<type>;base64,<data>")):
        with pytest.raises(UnprocessableEntityError) as bad:
            ask(url)
        (detail,) = bad.value.body["detail"]                  # FastAPI's request validation error
        assert "image messages[0].content[0]: " in detail["msg"], detail
        assert why in detail["msg"] and url[:40] in detail["msg"], detail
    assert ask(data_uri).choices[0].message.content == expected             # still up after the bad request

    # Each variant stops another way; none may leave swift deploy behind
    sig, reader_left = STOPS[overfit_run["variant"].name]
    proc = server["proc"]
    if reader_left:
        proc.stdout.close()                   # `infer.py --serve | tee`: the reader goes first
    proc.send_signal(sig)
    rest = "" if reader_left else proc.communicate(timeout=60)[0]
    proc.wait(timeout=60)
    if sig == signal.SIGKILL:
        assert proc.returncode == -signal.SIGKILL
    else:
        assert proc.returncode == 130 and (reader_left or "[serve] stopped" in rest), rest
    assert _server_gone(server["port"]), f"swift deploy --port {server['port']} outlived infer.py ({sig.name})"


# variant -> how its server is stopped: Ctrl-C; a closed terminal after tee's end; SIGKILL (the watchdog's job)
STOPS = {"internvl3_5": (signal.SIGINT, False), "internvl2_5": (signal.SIGHUP, True), "hf": (signal.SIGKILL, False)}


def _server_gone(port: int, timeout: float = 120) -> bool:
    """Waits until no process has `--port PORT` on its command line (pgrep exits 1), or the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True).returncode == 1:
            return True
        time.sleep(0.2)
    return False
