"""Publish a directory to ModelScope so that a failed push never leaves a partial model behind.

ms-swift's own push breaks on modelscope >= 1.38, and the client's `upload_folder` commits the files
that made it when one does not (a public repo with 9 of 10 files). So this drives the client's
primitives itself:
  1. create the repo with the requested visibility (an existing repo keeps its own);
  2. upload every changed weight file as an LFS blob first (blobs already on the hub are not sent
     again, so a retry resumes), with the client's retry budget;
  3. commit all changed files but the card in ONE commit (a hub commit is all or nothing), read the
     file list back and compare names, sizes and sha256;
  4. commit the model card (README.md) last, and verify again;
  5. list remote files that are not part of the export; `prune` deletes them in one more commit.
ModelScope's API can neither change a model's visibility nor delete a repo, so a first push that
fails leaves its new repo empty rather than private-and-complete; never partial. The token is read
from the environment (or a file), passed to the client object, never on a command line, and is
scrubbed from every message.
"""
from __future__ import annotations

import base64
import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

TOKEN_ENV = "MODELSCOPE_API_TOKEN"
IGNORED = (".ms_upload_cache", ".git", "infer")   # infer/: infer.py's predictions on a merged dir stay local
CARD = "README.md"
_CHUNK = 8 * 1024 * 1024


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


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def local_files(folder: Path) -> dict[str, tuple[int, str]]:
    """name -> (size, sha256) of what an export publishes (hashed in chunks: shards can be GBs)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not any(rel == i or rel.startswith(i + "/") for i in IGNORED):
            out[rel] = (p.stat().st_size, _sha256(p))
    return out


class _Hub:
    """The few calls a publish needs, on the modelscope client, with its retry budget."""

    def __init__(self, repo_id: str, token: str, notes: Callable[[str], None]):
        from modelscope_hub import constants
        from modelscope_hub.api import HubApi
        self.api, self.repo_id, self.note = HubApi(token=token), repo_id, notes
        self.blob_attempts = max(1, constants.UPLOAD_BLOB_MAX_ATTEMPTS)
        self.commit_attempts = max(1, constants.UPLOAD_COMMIT_MAX_ATTEMPTS)

    def create(self, private: bool) -> bool:
        from modelscope_hub import errors
        try:
            self.api.create_repo(self.repo_id, "model", visibility="private" if private else "public")
            return True
        except errors.AlreadyExistsError:
            return False

    def remote(self) -> dict[str, tuple[int, str | None]]:
        return {f.path: (f.size, f.sha256) for f in self.api.list_repo_files(self.repo_id, "model", recursive=True)
                if not f.is_dir}

    def _retrying(self, attempts: int, call: Callable[[], Any]) -> Any:
        from modelscope_hub import errors
        for attempt in range(attempts):
            try:
                return call()
            except (errors.NetworkError, errors.ServerError, errors.RequestTimeoutError, errors.RateLimitError):
                if attempt == attempts - 1:
                    raise
                time.sleep(min(2 ** attempt, 8))

    def upload_blobs(self, folder: Path, names: list[str], files: dict[str, tuple[int, str]]) -> int:
        """Send the LFS blobs the hub does not have yet; returns how many were sent."""
        from modelscope_hub._upload import _upload_mode
        lfs = [n for n in names if _upload_mode(n, files[n][0], "model") == "lfs"]
        sent = 0
        for start in range(0, len(lfs), 64):
            batch = lfs[start:start + 64]
            hrefs = self._retrying(self.commit_attempts, lambda: self.api.legacy.validate_blobs(
                self.repo_id, "model", [{"oid": files[n][1], "size": files[n][0]} for n in batch]))
            for name in batch:
                href = hrefs.get(files[name][1])
                if href is None:            # already stored: a retry resumes here
                    continue
                self.note(f"uploading {name} ({files[name][0] / 2**20:.1f} MiB)")

                def put(name: str = name, href: str = href) -> Any:
                    with open(folder / name, "rb") as f:
                        return self.api.legacy.upload_blob(href, f, files[name][0])
                self._retrying(self.blob_attempts, put)
                sent += 1
        return sent

    def commit(self, folder: Path, creates: list[str], deletes: list[str], files: dict[str, tuple[int, str]],
               message: str) -> None:
        """One commit: the hub applies all of it or none of it."""
        from modelscope_hub._upload import _upload_mode
        actions = []
        for name in sorted(creates):
            size, sha = files[name]
            if _upload_mode(name, size, "model") == "lfs":
                actions.append({"action": "create", "path": name, "type": "lfs", "size": size, "sha256": sha,
                                "content": "", "encoding": ""})
            else:
                content = base64.b64encode((folder / name).read_bytes()).decode()
                actions.append({"action": "create", "path": name, "type": "normal", "size": size, "sha256": "",
                                "content": content, "encoding": "base64"})
        actions += [{"action": "delete", "path": name} for name in sorted(deletes)]
        self._retrying(self.commit_attempts,
                       lambda: self.api.legacy.create_commit(self.repo_id, "model", actions, message))


def _differs(files: dict[str, tuple[int, str]], remote: dict[str, tuple[int, str | None]]) -> list[str]:
    return [n for n, (size, sha) in files.items() if remote.get(n) != (size, sha)]


def push(folder: Path, repo_id: str, *, private: bool, message: str, token: str, prune: bool = False,
         notes: Callable[[str], None] = print) -> list[str]:
    """Publish folder to repo_id as described above; returns what to tell the user. Raises PushError."""
    os.environ["MODELSCOPE_UPLOAD_CACHE_ENABLED"] = "false"
    from modelscope_hub import errors

    files = local_files(folder)
    done: list[str] = []
    hub = _Hub(repo_id, token, notes)
    remote: dict[str, tuple[int, str | None]] = {}

    def fail(what: str, e: Exception) -> PushError:
        text = str(e).replace(token, "***").splitlines()[0] if str(e) else type(e).__name__
        try:
            missing = _differs(files, hub.remote())
        except errors.HubError:
            missing = _differs(files, remote)
        partial = "" if not missing else (
            f"; not on the hub as this export has them: {', '.join(missing[:12])}"
            f"{' ...' if len(missing) > 12 else ''} ({len(missing)} of {len(files)} files)")
        return PushError(f"{what}: {text}{partial}. Nothing partial was committed (each commit is all or nothing; "
                         f"the card lands last). Run the same command again to retry: blobs the hub already "
                         f"has are not sent again")

    try:
        created = hub.create(private)
        done.append(f"created {'private' if private else 'public'} repo {repo_id}" if created else
                    f"repo {repo_id} exists: pushing a new commit, its visibility is unchanged")
        remote = {} if created else hub.remote()
        changed = _differs(files, remote)
        body = [n for n in changed if n != CARD]
        if body:
            sent = hub.upload_blobs(folder, body, files)
            hub.commit(folder, body, [], files, message)
            done.append(f"committed {len(body)} file(s) in one commit ({sent} blob(s) uploaded)")
            remote = hub.remote()
            bad = [n for n in _differs(files, remote) if n != CARD]
            if bad:
                raise PushError(f"the hub does not list {', '.join(bad)} as sent after the commit; run the same "
                                f"command again")
        if CARD in changed:
            hub.commit(folder, [CARD], [], files, f"{message} (model card)")
            done.append("committed the model card last")
            remote = hub.remote()
        bad = _differs(files, remote)
        if bad:
            raise PushError(f"the hub does not list {', '.join(bad)} as sent; run the same command again")
        done.append(f"verified {len(files)} file(s) on the hub (names, sizes, sha256)"
                    + ("" if changed else "; all were already there"))
        stale = sorted(n for n in remote if n not in files and not any(n == i or n.startswith(i + "/")
                                                                     for i in IGNORED))
        if stale and prune:
            hub.commit(folder, [], stale, files, f"{message} (prune)")
            remote = hub.remote()
            left = [n for n in stale if n in remote]
            if left:
                raise PushError(f"--prune: the hub still lists {', '.join(left)}")
            done.append(f"pruned {len(stale)} remote file(s) not in this export: {', '.join(stale)}")
        elif stale:
            done.append(f"{len(stale)} remote file(s) are not part of this export (left as they are; --prune "
                        f"deletes them): {', '.join(stale)}")
    except errors.AuthenticationError as e:
        raise fail(f"the hub refused the token in {TOKEN_ENV}", e) from None
    except errors.PermissionDeniedError as e:
        raise fail(f"no permission to write {repo_id}", e) from None
    except (errors.NetworkError, errors.ServerError, errors.RequestTimeoutError) as e:
        raise fail("the hub is unreachable or failing (after the client's retries)", e) from None
    except errors.HubError as e:
        raise fail("push failed", e) from None
    return done
