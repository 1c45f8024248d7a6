"""export.py on both routes: merge with proofs (logits and streamed weights), a model card without secrets
or local paths, and pushes to a stand-in ModelScope hub on 127.0.0.1 driven by the real modelscope client."""
from __future__ import annotations

import json
import re
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


def test_merge_is_proven_carries_knobs_and_is_never_reused(overfit_run, merged_export, tmp_path):
    variant, merged, stdout = overfit_run["variant"], merged_export["dir"], merged_export["stdout"]
    assert "[proof] weights: 14 LoRA target(s) = base + scaling * B @ A" in stdout
    assert "[proof] logits: merged vs base+adapter" in stdout and "the adapter is in" in stdout
    if variant.is_hf:
        proc_cfg = json.loads((merged / "processor_config.json").read_text())
        assert proc_cfg["image_processor"]["max_patches"] == 2                 # the run's knob travels
    else:
        assert json.loads((merged / "config.json").read_text())["max_dynamic_patch"] == 2
        assert (merged / "modeling_internvl_chat.py").is_file()              # remote code travels too
    record = json.loads((merged / "run.json").read_text())
    assert record["internvl"]["max_num"] == 2 and record["template"] == variant.template
    assert not (merged / "args.json").exists()
    card = (merged / "README.md").read_text()
    loader = ("AutoModelForImageTextToText" if variant.is_hf else "trust_remote_code=True")
    for needle in ("## What was trained", "max_num=2", "## Recipe", loader, "lmdeploy", "train.jsonl` (4 samples)"):
        assert needle in card, needle
    assert ("model.chat(" in card) != variant.is_hf
    for path in merged.rglob("*"):
        if path.suffix in (".md", ".json", ".yaml"):
            assert str(tmp_path.parent) not in path.read_text() and "/tmp/" not in path.read_text(), path
    again = export(str(overfit_run["checkpoint"]), "--merge", "-o", str(merged), token=None)
    assert again.returncode == 1 and "exists; pass --force" in again.stderr
    # the merged model answers like base+adapter did
    pred = tmp_path / "p.jsonl"
    inf = run_cli("infer.py", str(merged), "--dataset", str(overfit_run["data"]), "-o", str(pred),
                  "--max-new-tokens", "4")
    assert inf.returncode == 0, inf.stderr[-2000:]
    assert json.loads(pred.with_suffix(".metrics.json").read_text())["metrics"]["tuned"]["exact_match"] >= 0.75


@pytest.mark.parametrize("how", ["logits", "weights"])
def test_a_merge_without_the_adapter_fails_each_proof(overfit_run, how):
    from internvl_kit.infer.checkpoint import load
    from internvl_kit.publish.merge_proof import MergeError, prove
    with pytest.raises(MergeError, match="the adapter is not in the merged weights"):
        prove(load(overfit_run["checkpoint"]), overfit_run["variant"].path, how)   # "merged" = the untouched base


def _tamper(src: Path, dst: Path, pick, change) -> str:
    """A copy of a merged export with one tensor changed: the first name `pick` accepts."""
    import shutil
    from safetensors.torch import load_file, save_file
    shutil.copytree(src, dst)
    tensors = load_file(str(dst / "model.safetensors"))
    name = next(n for n in sorted(tensors) if pick(n))
    tensors[name] = change(tensors[name].clone())
    save_file(tensors, str(dst / "model.safetensors"), metadata={"format": "pt"})
    return name


def test_the_weight_proof_catches_a_corrupted_merge(overfit_run, merged_export, tmp_path):
    from internvl_kit.infer.checkpoint import load
    from internvl_kit.publish.merge_proof import MergeError, prove_weights
    info, base = load(overfit_run["checkpoint"]), overfit_run["variant"].path
    assert prove_weights(info, base, merged_export["dir"])["changed_targets"] == 14
    # a LoRA target off by one part in a thousand in one element
    name = _tamper(merged_export["dir"], tmp_path / "a", lambda n: n.endswith("q_proj.weight"), _nudge_one)
    with pytest.raises(MergeError, match=re.escape(name) + ".*merge is wrong"):
        prove_weights(info, base, tmp_path / "a")
    # a tensor LoRA never touched (the vision tower)
    name = _tamper(merged_export["dir"], tmp_path / "b", lambda n: "vision" in n and n.endswith("weight"),
                   lambda t: t + 1e-6)
    with pytest.raises(MergeError, match=re.escape(name) + ": not a LoRA target"):
        prove_weights(info, base, tmp_path / "b")


def _nudge_one(t):
    t[0, 0] = t[0, 0] * 1.001 + 1e-3
    return t


def test_auto_proof_streams_weights_when_the_logit_probe_does_not_fit(overfit_run, merged_export, monkeypatch):
    from internvl_kit.publish import merge_proof
    from internvl_kit.infer.checkpoint import load
    monkeypatch.setattr(merge_proof, "available_memory", lambda: 0)
    results = merge_proof.prove(load(overfit_run["checkpoint"]), merged_export["dir"], "auto")
    assert [r["proof"] for r in results] == ["weights", "logits"] and "do not fit" in results[1]["skipped"]
    monkeypatch.setattr(merge_proof, "available_memory", lambda: 1 << 40)
    assert "skipped" not in merge_proof.prove(load(overfit_run["checkpoint"]), merged_export["dir"], "auto")[1]


def test_push_adapter_and_merged_and_read_them_back(overfit_run, merged_export, hub, tmp_path):
    adapter = tmp_path / "adapter"
    out = export(str(overfit_run["checkpoint"]), "-o", str(adapter), "--push", "alice/colours-lora", hub=hub)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert "verified" in out.stdout and hub.state.repos["alice/colours-lora"].visibility == PUBLIC
    assert sorted(p.name for p in adapter.iterdir()) == ["README.md", "adapter_config.json",
                                                         "adapter_model.safetensors", "additional_config.json",
                                                         "args.json", "recipe.yaml", "run.json"]
    public_id = f"internvl-kit/{overfit_run['variant'].model.split(':')[1]}"
    assert json.loads((adapter / "adapter_config.json").read_text())["base_model_name_or_path"] == public_id
    swift_args = json.loads((adapter / "args.json").read_text())      # what `swift infer --adapters` reads
    assert (swift_args["model"], swift_args["template"]) == (public_id, overfit_run["variant"].template)
    same_tree(adapter, download(hub, "alice/colours-lora", tmp_path / "dl-adapter"))

    merged = merged_export["dir"]                   # an existing export is pushed as it is
    out = export(str(merged), "--push", "alice/colours", "--private", hub=hub)
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
    assert repo.visibility == PRIVATE and "all were already there" in again.stdout      # nothing re-committed


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


@pytest.mark.parametrize("fault", ["blob_5xx", "blob_drop", "commit_5xx", "commit_drop"])
def test_a_failed_push_publishes_nothing_partial_and_a_retry_resumes(fault, merged_export, hub):
    """Persistent failure on the large-file upload or on the commit: no repo shows some of the files."""
    merged = merged_export["dir"]
    hub.state.faults[fault] = 1000
    out = export(str(merged), "--push", "alice/atomic", hub=hub)
    assert out.returncode == 1 and "pushed:" not in out.stdout
    assert "model.safetensors" in out.stderr and "Run the same command again" in out.stderr
    repo = hub.state.repos["alice/atomic"]
    assert repo.files == {} and repo.commits == 0            # the one commit never landed: nothing partial
    hub.state.faults.clear()
    retry = export(str(merged), "--push", "alice/atomic", hub=hub)
    assert retry.returncode == 0, retry.stdout[-2000:] + retry.stderr[-2000:]
    assert sorted(repo.files) == sorted(p.relative_to(merged).as_posix() for p in merged.rglob("*") if p.is_file())
    assert repo.history[-1] == ["README.md"] and "README.md" not in repo.history[-2]      # the card lands last
    if fault.startswith("commit"):               # the blobs made it the first time: the retry resumes
        assert "in one commit (0 blob(s) uploaded)" in retry.stdout


def test_the_same_command_retries_a_failed_push_without_exporting_again(overfit_run, hub, tmp_path):
    """`export.py CKPT -o DIR --push` fails on the upload; the same command then pushes the export it already
    made (no --force, no second export); an export of another training state is still never reused."""
    out_dir = tmp_path / "adapter"
    command = (str(overfit_run["checkpoint"]), "-o", str(out_dir), "--push", "alice/retry")
    hub.state.faults["blob_5xx"] = 1000
    first = export(*command, hub=hub)
    assert first.returncode == 1 and "Run the same command again" in first.stderr and out_dir.is_dir()
    made = (out_dir / "adapter_model.safetensors").stat().st_mtime_ns
    hub.state.faults.clear()
    retry = export(*command, hub=hub)
    assert retry.returncode == 0, retry.stdout[-2000:] + retry.stderr[-2000:]
    assert "pushing it without exporting again" in retry.stdout and "[ok]    pushed: alice/retry" in retry.stdout
    assert (out_dir / "adapter_model.safetensors").stat().st_mtime_ns == made
    assert sorted(hub.state.repos["alice/retry"].files) == sorted(
        p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file())
    record = json.loads((out_dir / "run.json").read_text())
    (out_dir / "run.json").write_text(json.dumps({**record, "source": "0" * 64}))     # made from another state
    stale = export(*command, hub=hub)
    assert stale.returncode == 1 and "exists; pass --force" in stale.stderr


def test_a_failed_update_leaves_the_previous_version_whole(overfit_run, merged_export, hub, tmp_path):
    adapter = tmp_path / "adapter"
    assert export(str(overfit_run["checkpoint"]), "-o", str(adapter), "--push", "alice/v", hub=hub).returncode == 0
    before = dict(hub.state.repos["alice/v"].files)
    hub.state.faults["blob_5xx"] = 1000
    out = export(str(merged_export["dir"]), "--push", "alice/v", hub=hub)
    assert out.returncode == 1 and hub.state.repos["alice/v"].files == before


def test_stale_remote_files_are_listed_and_pruned_on_request(overfit_run, merged_export, hub, tmp_path):
    assert export(str(merged_export["dir"]), "--push", "alice/mixed", hub=hub).returncode == 0
    adapter = tmp_path / "adapter"
    out = export(str(overfit_run["checkpoint"]), "-o", str(adapter), "--push", "alice/mixed", hub=hub)
    assert out.returncode == 0
    assert re.search(r"\d+ remote file\(s\) are not part of this export .*--prune deletes them\): .*model\.safetensors",
                     out.stdout)
    repo = hub.state.repos["alice/mixed"]
    assert "model.safetensors" in repo.files and "adapter_model.safetensors" in repo.files
    # the existing export is pushed as it is: no re-export, no "-adapter-adapter"
    pruned = export(str(adapter), "--push", "alice/mixed", "--prune", hub=hub)
    assert pruned.returncode == 0 and "pruned" in pruned.stdout
    assert sorted(repo.files) == sorted(p.name for p in adapter.iterdir())
    assert not (tmp_path / "adapter-adapter").exists()


def test_the_card_renders_every_table_row_whole(overfit_run, tmp_path):
    """The LoRA targets are a regex full of `|` and `\\`: a markdown parser must still see two cells per
    row of the "What was trained" table, and the regex itself in its cell."""
    from markdown_it import MarkdownIt
    adapter = tmp_path / "adapter"
    assert export(str(overfit_run["checkpoint"]), "-o", str(adapter), token=None).returncode == 0
    tokens = MarkdownIt("commonmark").enable("table").parse((adapter / "README.md").read_text())
    rows: list[list[str]] = []
    for i, t in enumerate(tokens):
        if t.type == "tr_open":
            rows.append([])
        elif t.type in ("th_open", "td_open"):
            rows[-1].append("".join(c.content for c in tokens[i + 1].children or []))
    trained = rows[:9]                                   # header + 8 rows
    assert all(len(r) == 2 for r in trained), trained
    targets = json.loads((adapter / "adapter_config.json").read_text())["target_modules"]
    assert "|" in targets and dict(trained[1:])["LoRA targets"] == targets


def test_token_never_appears_in_output_or_files(overfit_run, hub, tmp_path, tmp_path_factory):
    """Every captured output, every written file, every pushed file. Last in this module, but pytest-xdist may
    run it on a worker where no other push ran: it pushes once itself (a success and a refusal) first."""
    assert export(str(overfit_run["checkpoint"]), "-o", str(tmp_path / "own"), "--push", "alice/token-check",
                  hub=hub).returncode == 0
    assert export(str(tmp_path / "own"), "--push", "bob/not-alices", hub=hub).returncode != 0
    assert OUTPUTS
    assert not [o for o in OUTPUTS if TOKEN in o]
    from conftest import _SESSION_TMP            # the client's homes and caches (MODELSCOPE_HOME, ...)
    roots = [overfit_run["root"], Path(tmp_path_factory.getbasetemp()), _SESSION_TMP]
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and path.stat().st_size < 50_000_000:
                assert TOKEN.encode() not in path.read_bytes(), path


def test_sigterm_mid_merge_stops_cleanly_and_writes_nothing(overfit_run, tmp_path):
    """A scheduler's SIGTERM while swift merges: export.py stops the merge (no child left), exits 130 with a
    one-line message instead of a traceback, and leaves no export directory behind (exports are whole or absent)."""
    import signal
    import subprocess
    import sys
    out = tmp_path / "merged"
    proc = subprocess.Popen([sys.executable, "export.py", str(overfit_run["checkpoint"]), "--merge", "-o", str(out)],
                            cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    for line in proc.stdout:                         # the event, not a delay: swift's merge has started
        if line.startswith("[merge] swift export"):
            break
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "interrupted" in err, err[-2000:]
    assert not out.exists()
    left = subprocess.run(["pgrep", "-f", "--", str(overfit_run["checkpoint"])], capture_output=True)
    assert left.returncode == 1, left.stdout                  # no merge process (its argv names it) outlives it


@pytest.mark.parametrize("saved", [True, False], ids=["merge-saved", "nothing-saved"])
def test_an_abort_while_swift_exits_after_saving_the_merge_goes_on_to_the_proofs(saved, tmp_path, monkeypatch):
    """swift export can die of SIGABRT while exiting after its merge is written (Python 3.11's shutdown race,
    pytorch#38228): with config.json there the merge goes on (the proofs check the weights); without, it fails."""
    import sys
    from internvl_kit.infer.checkpoint import CheckpointInfo
    from internvl_kit.publish import merge
    from internvl_kit.publish.merge_proof import MergeError
    out = tmp_path / "merged"
    child = f"""
import os, pathlib, sys
out = pathlib.Path({str(out)!r})
if {saved!r}:
    out.mkdir(); (out / "config.json").write_text("{{}}")
print("[INFO:swift] End time of running main: 2026-12-04 01:00:00", flush=True)
sys.stderr.write("terminate called without an active exception\\n"); sys.stderr.flush()
os.abort()"""
    monkeypatch.setattr(merge.SwiftCommand, "argv", lambda self: [sys.executable, "-c", child])
    info = CheckpointInfo(path=tmp_path / "checkpoint-1", kind="adapter", base_model="m", model_type="internvl_chat",
                          template="internvl3_5", max_length=None)
    notes: list[str] = []
    if saved:
        merge.run_swift_merge(info, out, progress=notes.append)
        assert any("aborted while exiting" in n and "the proofs below check" in n for n in notes), notes
    else:
        with pytest.raises(MergeError, match="swift export --merge_lora failed"):
            merge.run_swift_merge(info, out, progress=notes.append)
