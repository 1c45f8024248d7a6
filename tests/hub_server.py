"""A stand-in ModelScope hub on 127.0.0.1 for the push and dataset tests (datasets also on its Hugging Face side).

It answers the calls the real `modelscope` client makes to create a repo, upload (LFS batch, blob
PUT, commit) and read back (file list, raw file), stores what was pushed so tests can compare it,
and injects faults on request: 5xx on blob PUT or commit, a dropped connection on either, refused
tokens and 403 for repos of another owner. Request shapes: shared/reference/modelscope-hub-protocol.md.

Datasets (`state.add_dataset`) are served on both sides: to modelscope's `MsDataset.load` (/api/v1/datasets/...,
faults `parquet_5xx` / `parquet_drop`) and, under the same ids, to `datasets.load_dataset` through HF_ENDPOINT
(/api/datasets/{id}/revision|tree/..., /datasets/{id}/resolve/{rev}/{path}).
"""
from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

PRIVATE, INTERNAL, PUBLIC = 1, 3, 5
HF_SHA = "5" * 40          # the one revision the Hugging Face side serves


@dataclass
class Repo:
    visibility: int
    files: dict[str, bytes] = field(default_factory=dict)
    commits: int = 0
    history: list[list[str]] = field(default_factory=list)     # the paths each commit touched, in order


@dataclass
class DatasetRepo:
    id: int                                                   # the client addresses the file tree by it
    files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class HubState:
    tokens: dict[str, str] = field(default_factory=dict)     # token -> username
    repos: dict[str, Repo] = field(default_factory=dict)
    datasets: dict[str, DatasetRepo] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    faults: dict[str, int] = field(default_factory=dict)     # name -> how many more times to fire
    log: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add_dataset(self, repo_id: str, files: dict[str, bytes]) -> None:
        self.datasets[repo_id] = DatasetRepo(id=1000 + len(self.datasets), files=dict(files))

    def fire(self, name: str) -> bool:
        with self.lock:
            if self.faults.get(name, 0) > 0:
                self.faults[name] -= 1
                return True
        return False


class _Handler(BaseHTTPRequestHandler):
    state: HubState
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    # ---------------------------------------------------------------- helpers
    def _send(self, status: int, body: object = None, raw: bytes | None = None, headers: dict | None = None,
              head: bool = False):
        data = raw if raw is not None else json.dumps(body if body is not None else {}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream" if raw is not None else "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if not head:                                  # a reply to HEAD has the headers only
            self.wfile.write(data)

    def _ok(self, data: object = None, headers: dict | None = None):
        self._send(200, {"Code": 200, "Success": True, "Message": "success", "Data": data}, headers=headers)

    def _body(self) -> bytes:
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else None
        if not token:
            m = re.search(r"m_session_id=([^;]+)", self.headers.get("Cookie", ""))
            token = m.group(1) if m else None
        return self.state.tokens.get(token or "")

    def _auth_or_fail(self) -> str | None:
        user = self._user()
        if user is None:
            self._send(401, {"Code": 10010103009, "Message": "AccessToken is invalid or expired"})
        return user

    def _repo_id(self, path: str) -> str:
        m = re.match(r"^/api/v1/(?:repos/)?models/([^/]+)/([^/]+)", path)
        return f"{m.group(1)}/{m.group(2)}" if m else ""

    def _readable(self, repo_id: str) -> Repo | None:
        repo = self.state.repos.get(repo_id)
        if repo is None:
            self._send(404, {"Code": 10010205001, "Message": "model not found"})
            return None
        if repo.visibility == PRIVATE and self._user() != repo_id.split("/")[0]:
            self._send(404, {"Code": 10010205001, "Message": "model not found"})
            return None
        return repo

    # ---------------------------------------------------------------- routes
    def do_POST(self):  # noqa: N802
        url = urlparse(self.path)
        path = url.path
        body = self._body()
        self.state.log.append(f"POST {path}")
        if path == "/api/v1/login":
            token = (json.loads(body or b"{}")).get("AccessToken", "")
            user = self.state.tokens.get(token)
            if user is None:
                return self._send(400, {"Code": 10010103009, "Message": "AccessToken is invalid or expired"})
            return self._ok({"AccessToken": "git-" + user, "Username": user, "Email": f"{user}@x"},
                            headers={"Set-Cookie": f"m_session_id={token}; Path=/"})
        if path.startswith("/api/v1/datasets/"):
            return self._ok({})                        # download statistics
        user = self._auth_or_fail()
        if user is None:
            return
        if path == "/api/v1/models":
            req = json.loads(body)
            repo_id = f"{req['Path']}/{req['Name']}"
            if req["Path"] != user:
                return self._send(403, {"Code": 10010103010, "Message": f"{user} may not create in {req['Path']}"})
            if repo_id in self.state.repos:
                return self._send(400, {"Code": 10010101001, "Message": "model already exists"})
            self.state.repos[repo_id] = Repo(visibility=int(req.get("Visibility", PUBLIC)))
            return self._ok({"Path": req["Path"], "Name": req["Name"]})
        repo_id = self._repo_id(path)
        repo = self.state.repos.get(repo_id)
        if repo is None:
            return self._send(404, {"Code": 10010205001, "Message": "model not found"})
        if repo_id.split("/")[0] != user:
            return self._send(403, {"Code": 10010103010, "Message": "no write permission"})
        if path.endswith("/info/lfs/objects/batch"):
            req = json.loads(body)
            objects = []
            for o in req["objects"]:
                entry = {"oid": o["oid"], "size": o["size"]}
                if o["oid"] not in self.state.blobs:
                    host = self.headers.get("Host")
                    entry["actions"] = {"upload": {"href": f"http://{host}/blobs/{o['oid']}"}}
                objects.append(entry)
            return self._ok({"objects": objects})
        if "/commit/" in path:
            if self.state.fire("commit_drop"):
                self.close_connection = True
                self.connection.close()
                return
            if self.state.fire("commit_5xx"):
                return self._send(503, {"Code": 503, "Message": "injected commit failure"})
            req = json.loads(body)
            staged = dict(repo.files)
            for a in req["actions"]:
                if a["action"] == "delete":
                    staged.pop(a["path"], None)
                elif a["type"] == "lfs":
                    blob = self.state.blobs.get(a["sha256"])
                    if blob is None:
                        return self._send(400, {"Code": 400, "Message": f"blob of {a['path']} was never uploaded"})
                    staged[a["path"]] = blob
                else:
                    staged[a["path"]] = base64.b64decode(a["content"])
            repo.files = staged
            repo.commits += 1
            repo.history.append(sorted(a["path"] for a in req["actions"]))
            return self._ok({})
        self._send(404, {"Code": 404, "Message": f"no route POST {path}"})

    def do_PUT(self):  # noqa: N802
        path = urlparse(self.path).path
        self.state.log.append(f"PUT {path}")
        if self.state.fire("blob_drop"):
            self.rfile.read(min(int(self.headers.get("Content-Length") or 0), 10))
            self.close_connection = True
            self.connection.close()
            return
        body = self._body()
        if self._user() is None:
            return self._send(401, {"Message": "unauthorized"})
        if self.state.fire("blob_5xx"):
            return self._send(502, {"Message": "injected blob failure"})
        oid = path.rsplit("/", 1)[-1]
        if hashlib.sha256(body).hexdigest() != oid:
            return self._send(400, {"Message": "sha256 mismatch"})
        self.state.blobs[oid] = body
        self._send(200, {})

    def do_GET(self):  # noqa: N802
        url = urlparse(self.path)
        path, q = url.path, parse_qs(url.query)
        self.state.log.append(f"GET {path}")
        if path == "/openapi/v1/users/me":
            user = self._auth_or_fail()
            if user:
                self._send(200, {"success": True, "data": {"username": user, "email": f"{user}@x", "id": 1}})
            return
        if path == "/api/v1/repos/internalAccelerationInfo":
            return self._send(404, {"Message": "not here"})
        if path.startswith("/api/v1/datasets/"):
            return self._dataset_get(path, q)
        if path.startswith(("/api/datasets/", "/datasets/")):
            return self._hf_dataset(unquote(path), q)
        repo_id = self._repo_id(path)
        if not repo_id:
            return self._send(404, {"Code": 404, "Message": f"no route GET {path}"})
        repo = self._readable(repo_id)
        if repo is None:
            return
        if path.endswith("/repo/files"):
            files = [{"Path": p, "Name": p.rsplit("/", 1)[-1], "Type": "blob", "Size": len(b),
                      "Sha256": hashlib.sha256(b).hexdigest(), "Revision": "master"}
                     for p, b in sorted(repo.files.items())]
            return self._ok({"Files": files})
        if path.endswith("/revisions"):
            return self._ok({"RevisionMap": {"Branches": [{"Revision": "master", "CreatedAt": 0}], "Tags": []}})
        if path.endswith("/repo"):
            fp = unquote(q.get("FilePath", [""])[0])
            if fp not in repo.files:
                return self._send(404, {"Message": "file not found"})
            return self._send(200, raw=repo.files[fp])
        if re.match(r"^/api/v1/models/[^/]+/[^/]+$", path):
            return self._ok({"Path": repo_id.split("/")[0], "Name": repo_id.split("/")[1],
                             "Visibility": repo.visibility})
        self._send(404, {"Code": 404, "Message": f"no route GET {path}"})


    def do_HEAD(self):  # noqa: N802
        url = urlparse(self.path)
        self.state.log.append(f"HEAD {url.path}")
        if url.path.startswith("/datasets/"):
            return self._hf_dataset(unquote(url.path), parse_qs(url.query), head=True)
        self._dataset_get(url.path, parse_qs(url.query), head=True)

    def _hf_dataset(self, path: str, q: dict, head: bool = False) -> None:
        """The Hugging Face side (HF_ENDPOINT), what `datasets.load_dataset` reads: repo info at a revision,
        the tree, and files under /resolve/. One revision, the same files as the ModelScope side."""
        api = re.match(r"^/api/datasets/([^/]+/[^/]+)(?:/(revision|tree)/([^/]+)/?(.*))?$", path)
        raw = re.match(r"^/datasets/([^/]+/[^/]+)/resolve/([^/]+)/(.+)$", path)
        repo_id = (api or raw).group(1) if (api or raw) else ""
        ds = self.state.datasets.get(repo_id)
        if ds is None:
            return self._send(404, {"error": f"Repository {repo_id} not found"},
                              headers={"X-Error-Code": "RepoNotFound"}, head=head)
        if raw:
            fp = raw.group(3)
            if fp not in ds.files:
                return self._send(404, {"error": "Entry not found"}, headers={"X-Error-Code": "EntryNotFound"},
                                  head=head)
            body = ds.files[fp]
            return self._send(200, raw=body, head=head,
                              headers={"ETag": '"' + hashlib.sha1(body).hexdigest() + '"', "X-Repo-Commit": HF_SHA})
        if api.group(2) != "tree":
            return self._send(200, {"id": repo_id, "sha": HF_SHA, "private": False, "cardData": {},
                                    "siblings": [{"rfilename": f} for f in sorted(ds.files)]})
        root, recursive = api.group(4).strip("/"), q.get("recursive", ["false"])[0].lower() == "true"
        entries, dirs = [], set()
        for f, b in sorted(ds.files.items()):
            if root and not f.startswith(root + "/"):
                continue
            rel = f[len(root) + 1:] if root else f
            if "/" in rel and not recursive:
                d = (root + "/" if root else "") + rel.split("/")[0]
                if d not in dirs:
                    dirs.add(d)
                    entries.append({"type": "directory", "path": d, "oid": HF_SHA})
                continue
            entries.append({"type": "file", "path": f, "size": len(b), "oid": hashlib.sha1(b).hexdigest()})
        self._send(200, entries)

    def _dataset_get(self, path: str, q: dict, head: bool = False) -> None:
        """What `MsDataset.load` reads: repo info, the file tree (by numeric id), revisions, raw files."""
        parts = path[len("/api/v1/datasets/"):].split("/")
        if parts[0].isdigit():
            found = [(rid, d) for rid, d in self.state.datasets.items() if str(d.id) == parts[0]]
            repo_id, ds = found[0] if found else ("", None)
            rest = parts[1:]
        else:
            repo_id = "/".join(parts[:2])
            ds, rest = self.state.datasets.get(repo_id), parts[2:]
        if ds is None:
            return self._send(404, {"Code": 10010205001, "Message": f"dataset {repo_id or parts[0]} not found"},
                              head=head)
        if not rest:
            ns, name = repo_id.split("/")
            return self._ok({"Id": ds.id, "Type": 4, "Namespace": ns, "Name": name, "Visibility": PUBLIC})
        if rest == ["revisions"]:
            return self._ok({"RevisionMap": {"Branches": [{"Revision": "master", "CreatedAt": 0}], "Tags": []}})
        if rest == ["repo", "tree"]:
            root = unquote(q.get("Root", ["/"])[0]).strip("/")
            recursive = q.get("Recursive", ["False"])[0].lower() == "true"
            page, size = int(q.get("PageNumber", ["1"])[0]), int(q.get("PageSize", ["100"])[0])
            entries, dirs = [], set()
            for p, b in sorted(ds.files.items()):
                if root and not p.startswith(root + "/"):
                    continue
                rel = p[len(root) + 1:] if root else p
                if not recursive and "/" in rel:
                    d = (root + "/" if root else "") + rel.split("/")[0]
                    if d not in dirs:
                        dirs.add(d)
                        entries.append({"Path": d, "Name": d.rsplit("/", 1)[-1], "Type": "tree", "Size": 0,
                                        "Sha256": "", "Revision": "master"})
                    continue
                entries.append({"Path": p, "Name": p.rsplit("/", 1)[-1], "Type": "blob", "Size": len(b),
                                "Sha256": hashlib.sha256(b).hexdigest(), "Revision": "master"})
            return self._ok({"Files": entries[(page - 1) * size:page * size]})
        if rest == ["repo"]:
            fp = unquote(q.get("FilePath", [""])[0])
            if fp not in ds.files:
                return self._send(404, {"Message": f"file {fp} not found"}, head=head)
            if fp.endswith(".parquet") and not head:
                if self.state.fire("parquet_drop"):
                    self.close_connection = True
                    self.connection.close()
                    return
                if self.state.fire("parquet_5xx"):
                    return self._send(500, {"Message": "injected parquet failure"})
            body = ds.files[fp]
            return self._send(200, raw=body, headers={"ETag": '"' + hashlib.sha256(body).hexdigest() + '"'}, head=head)
        self._send(404, {"Code": 404, "Message": f"no route GET {path}"}, head=head)


class StandInHub:
    """`with StandInHub(tokens={"tok": "alice"}) as hub:` serves on hub.endpoint until the block ends."""

    def __init__(self, tokens: dict[str, str]):
        self.state = HubState(tokens=dict(tokens))
        handler = type("Handler", (_Handler,), {"state": self.state})
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "StandInHub":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
