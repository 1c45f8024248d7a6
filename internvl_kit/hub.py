"""Push a directory to ModelScope with the modelscope client, and prove it arrived.

ms-swift's own push breaks on modelscope >= 1.38 and `push_to_hub` returns False instead of
raising, so this: creates the repo first with the requested visibility (an upload to a missing repo
creates a PUBLIC one; an existing repo keeps its visibility), uploads with the client's resume cache
off (it would otherwise write `.ms_upload_cache` into the folder), then lists the remote files and
compares name, size and sha256 with what was meant to go. The token is read from the environment
(or a file) and passed to the client object, never on a command line, and is scrubbed from errors.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

TOKEN_ENV = "MODELSCOPE_API_TOKEN"
IGNORED = (".ms_upload_cache", ".git", "infer")   # infer/: infer.py's predictions on a merged dir stay local


class PushError(Exception):
    """The push did not complete; local files are untouched."""


def read_token(token_file: Path | None) -> str:
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token and token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except OSError as e:
            raise PushError(f"--token-file {token_file}: cannot read ({e.strerror})") from None
    if not token:
        raise PushError(f"no ModelScope token: set {TOKEN_ENV} (or pass --token-file FILE); "
                        f"create one at modelscope.cn -> account settings -> access tokens")
    return token


def local_files(folder: Path) -> dict[str, tuple[int, str]]:
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not any(rel == i or rel.startswith(i + "/") for i in IGNORED):
            out[rel] = (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


def push(folder: Path, repo_id: str, *, private: bool, message: str, token: str) -> list[str]:
    """Upload folder to repo_id and verify it; returns notes for the user. Raises PushError."""
    os.environ["MODELSCOPE_UPLOAD_CACHE_ENABLED"] = "false"
    from modelscope_hub import errors
    from modelscope_hub.api import HubApi

    def fail(what: str, e: Exception) -> PushError:
        text = str(e).replace(token, "***").splitlines()[0]
        return PushError(f"{what}: {text}")

    notes = []
    api = HubApi(token=token)
    try:
        try:
            api.create_repo(repo_id, "model", visibility="private" if private else "public")
            notes.append(f"created {'private' if private else 'public'} repo {repo_id}")
        except errors.AlreadyExistsError:
            notes.append(f"repo {repo_id} exists: pushing a new commit, its visibility is unchanged")
        api.upload_folder(repo_id, "model", str(folder), commit_message=message, disable_tqdm=True,
                          ignore_patterns=[f"{i}/*" for i in IGNORED] + list(IGNORED), use_cache=False)
        remote = {f.path: (f.size, f.sha256) for f in api.list_repo_files(repo_id, "model", recursive=True)
                  if not f.is_dir}
    except errors.AuthenticationError as e:
        raise fail(f"the hub refused the token in {TOKEN_ENV}", e) from None
    except errors.PermissionDeniedError as e:
        raise fail(f"no permission to write {repo_id}", e) from None
    except (errors.NetworkError, errors.ServerError) as e:
        raise fail("the hub is unreachable or failing (after the client's retries)", e) from None
    except errors.HubError as e:
        raise fail("push failed", e) from None
    expected = local_files(folder)
    bad = [f"{name} ({'missing' if name not in remote else 'size/sha256 differ'})"
           for name, (size, sha) in expected.items() if remote.get(name) != (size, sha)]
    if bad:
        raise PushError(f"upload incomplete: {len(bad)} of {len(expected)} file(s) not on the hub as sent: "
                        + ", ".join(bad[:10]))
    notes.append(f"verified {len(expected)} file(s) on the hub (names, sizes, sha256)")
    return notes
