"""export.py: merge with proof, a model card without secrets or local paths, and pushes to a stand-in
ModelScope hub on 127.0.0.1 driven by the real modelscope client."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import run_cli
from hub_server import PRIVATE, PUBLIC, StandInHub

pytestmark = pytest.mark.e2e
TOKEN = "ms-tok-7f3c9a1e-SECRET"
FAST_FAULTS = {"MODELSCOPE_API_MAX_RETRIES": "1", "MODELSCOPE_UPLOAD_BLOB_MAX_ATTEMPTS": "1",
               "MODELSCOPE_UPLOAD_COMMIT_MAX_ATTEMPTS": "1", "MODELSCOPE_UPLOAD_FAILED_FILE_MAX_RETRY_ROUNDS": "1",
               "MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS": "1", "MODELSCOPE_DOWNLOAD_MAX_RETRIES": "0",
               "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false"}
OUTPUTS: list[str] = []        # everything the commands printed, checked for the token at the end


@pytest.fixture
def hub():
    with StandInHub({TOKEN: "alice", "bob-token": "bob"}) as server:
        yield server


def export(*args: str, hub: StandInHub | None = None, token: str | None = TOKEN, extra: dict | None = None):
    env = dict(FAST_FAULTS)
    if hub is not None:
        env["MODELSCOPE_ENDPOINT"] = hub.endpoint
    env["MODELSCOPE_API_TOKEN"] = token or ""
    env.update(extra or {})
    out = run_cli("export.py", *args, env=env)
    OUTPUTS.append(out.stdout + out.stderr)
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    return out


def download(hub: StandInHub, repo_id: str, dest: Path) -> Path:
    code = ("import sys; from modelscope_hub.api import HubApi; "
            "print(HubApi(token=sys.argv[2]).download_repo(sys.argv[1], 'model', local_dir=sys.argv[3]))")
    env = {**FAST_FAULTS, "MODELSCOPE_ENDPOINT": hub.endpoint}
    out = run_cli("-c", code, repo_id, TOKEN, str(dest), env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    return dest


def same_tree(a: Path, b: Path) -> None:
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    got = sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file() and ".ms" not in p.as_posix()
                 and ".mdl" not in p.name and ".msc" not in p.name)
    assert files == got
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f


def test_help_documents_the_token_variable():
    out = run_cli("export.py", "--help")
    assert out.returncode == 0 and "MODELSCOPE_API_TOKEN" in out.stdout


def test_merge_is_proven_carries_knobs_and_is_never_reused(overfit_run, tmp_path):
    merged = tmp_path / "merged"
    out = export(str(overfit_run["checkpoint"]), "--merge", "-o", str(merged), token=None)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "[proof] merged vs base+adapter" in out.stdout and "the adapter is in" in out.stdout
    proc_cfg = json.loads((merged / "processor_config.json").read_text())
    assert proc_cfg["image_processor"]["max_patches"] == 2                     # the run's knob travels
    record = json.loads((merged / "run.json").read_text())
    assert record["internvl"] == {"max_num": 2} and record["template"] == "internvl_hf"
    assert not (merged / "args.json").exists()
    card = (merged / "README.md").read_text()
    for needle in ("## What was trained", "max_num=2", "## Recipe", "AutoModelForImageTextToText", "lmdeploy",
                   "train.jsonl` (4 samples)"):
        assert needle in card, needle
    for path in merged.rglob("*"):
        if path.suffix in (".md", ".json", ".yaml"):
            assert str(tmp_path) not in path.read_text() and "/tmp/" not in path.read_text(), path
    again = export(str(overfit_run["checkpoint"]), "--merge", "-o", str(merged), token=None)
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
    # the merged model answers like base+adapter did
    pred = tmp_path / "p.jsonl"
    inf = run_cli("infer.py", str(merged), "--dataset", str(overfit_run["data"]), "-o", str(pred),
                  "--max-new-tokens", "4")
    assert inf.returncode == 0, inf.stderr[-2000:]
    assert json.loads(pred.with_suffix(".metrics.json").read_text())["metrics"]["tuned"]["exact_match"] >= 0.75


def test_a_merge_without_the_adapter_fails_the_proof(overfit_run, tiny_model):
    from internvl_kit.checkpoint import load
    from internvl_kit.merge import MergeError, prove
    with pytest.raises(MergeError, match="the adapter is not in the merged weights"):
        prove(load(overfit_run["checkpoint"]), tiny_model)       # "merged" = the untouched base model


def test_push_adapter_and_merged_and_read_them_back(overfit_run, hub, tmp_path):
    adapter = tmp_path / "adapter"
    out = export(str(overfit_run["checkpoint"]), "-o", str(adapter), "--push", "alice/colours-lora", hub=hub)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "verified" in out.stdout and hub.state.repos["alice/colours-lora"].visibility == PUBLIC
    assert sorted(p.name for p in adapter.iterdir()) == ["README.md", "adapter_config.json",
                                                         "adapter_model.safetensors", "additional_config.json",
                                                         "recipe.yaml", "run.json"]
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == \
        "builtin:tiny-internvl"
    same_tree(adapter, download(hub, "alice/colours-lora", tmp_path / "dl-adapter"))

    merged = tmp_path / "merged"
    out = export(str(overfit_run["checkpoint"]), "--merge", "-o", str(merged), "--push", "alice/colours",
                 "--private", hub=hub)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert hub.state.repos["alice/colours"].visibility == PRIVATE
    same_tree(merged, download(hub, "alice/colours", tmp_path / "dl-merged"))
    assert not any(".ms_upload_cache" in p for p in hub.state.repos["alice/colours"].files)


def test_private_repo_stays_private_when_pushed_again(overfit_run, hub, tmp_path):
    out_dir = tmp_path / "a"
    assert export(str(overfit_run["checkpoint"]), "-o", str(out_dir), "--push", "alice/p", "--private",
                  hub=hub).returncode == 0
    again = export(str(overfit_run["checkpoint"]), "-o", str(out_dir), "--force", "--push", "alice/p", hub=hub)
    assert again.returncode == 0 and "visibility is unchanged" in again.stdout
    repo = hub.state.repos["alice/p"]
    assert repo.visibility == PRIVATE and repo.commits == 2


def test_injected_5xx_on_blob_and_commit_are_recovered(overfit_run, hub, tmp_path):
    hub.state.faults.update(blob_5xx=1, commit_5xx=1)
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "a"), "--push", "alice/flaky", hub=hub,
                 extra={"MODELSCOPE_UPLOAD_BLOB_MAX_ATTEMPTS": "3", "MODELSCOPE_UPLOAD_COMMIT_MAX_ATTEMPTS": "3"})
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert hub.state.faults == {"blob_5xx": 0, "commit_5xx": 0}            # both faults really fired
    assert "verified" in out.stdout


def test_bad_token_forbidden_repo_and_missing_token_fail_clearly(overfit_run, hub, tmp_path):
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "a"), "--push", "alice/x", hub=hub,
                 token="not-a-valid-token")
    assert out.returncode == 1 and "refused the token in MODELSCOPE_API_TOKEN" in out.stderr
    assert "not-a-valid-token" not in out.stdout + out.stderr
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()         # nothing local lost
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "b"), "--push", "bob/x", hub=hub)
    assert out.returncode == 1 and "no permission to write bob/x" in out.stderr
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "c"), "--push", "alice/x", hub=hub, token="")
    assert out.returncode == 1 and "no ModelScope token: set MODELSCOPE_API_TOKEN" in out.stderr
    assert not (tmp_path / "c").exists()                                    # refused before any work


def test_unreachable_hub_fails_clearly_after_retries(overfit_run, tmp_path):
    import socket
    with socket.socket() as sock:                  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "a"), "--push", "alice/x",
                 extra={"MODELSCOPE_ENDPOINT": f"http://127.0.0.1:{port}"})
    assert out.returncode == 1 and "the hub is unreachable or failing" in out.stderr
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()


def test_interrupted_upload_does_not_report_success(overfit_run, hub, tmp_path):
    hub.state.faults.update(blob_drop=100)
    out = export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "a"), "--push", "alice/cut", hub=hub)
    assert out.returncode == 1 and "pushed:" not in out.stdout
    assert "adapter_model.safetensors" not in hub.state.repos["alice/cut"].files
    assert (tmp_path / "a" / "adapter_model.safetensors").is_file()


def test_token_never_appears_in_output_or_files(overfit_run, tmp_path_factory):
    """Runs last in this module: every captured output, every written file, every pushed file."""
    assert OUTPUTS, "the push tests ran first"
    assert not [o for o in OUTPUTS if TOKEN in o]
    from conftest import _SESSION_TMP            # the client's homes and caches (MODELSCOPE_HOME, ...)
    roots = [overfit_run["root"], Path(tmp_path_factory.getbasetemp()), _SESSION_TMP]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert TOKEN.encode() not in path.read_bytes(), path
