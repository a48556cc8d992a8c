"""A small Hub server on 127.0.0.1 speaking the subset of the Hub HTTP API that huggingface_hub
calls (see ../shared/HUB_PROTOCOL.md), so that the Hub code is tested through huggingface_hub
itself over a real socket. In memory; model repos only; one user, ``tester``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlparse

import yaml


@dataclass
class FileEntry:
    data: bytes
    lfs: bool

    @property
    def git_oid(self) -> str:
        return hashlib.sha1(b"blob %d\0" % len(self.data) + self.data).hexdigest()

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.git_oid


@dataclass
class Repo:
    repo_id: str
    private: bool = False
    branches: dict[str, str] = field(default_factory=dict)
    commits: dict[str, dict[str, FileEntry]] = field(default_factory=dict)
    prs: int = 0


class HubState:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.break_next: set[str] = set()  # paths whose next download is cut off half-way
        self.requests: list[str] = []

    def new_commit(self, repo: Repo, files: dict[str, FileEntry]) -> str:
        sha = hashlib.sha1(uuid.uuid4().bytes).hexdigest()
        repo.commits[sha] = files
        return sha

    def resolve(self, repo: Repo, rev: str) -> str | None:
        rev = unquote(rev)
        if rev in repo.branches:
            return repo.branches[rev]
        if rev in repo.commits:
            return rev
        return None


def _model_info(base: str, repo: Repo, sha: str, card_data: bool = True) -> dict:
    files = repo.commits[sha]
    card = {}
    if "README.md" in files:
        text = files["README.md"].data.decode()
        if text.startswith("---"):
            card = yaml.safe_load(text.split("---", 2)[1]) or {}
    return {
        "_id": repo.repo_id, "id": repo.repo_id, "modelId": repo.repo_id, "author": repo.repo_id.split("/")[0],
        "sha": sha, "private": repo.private, "disabled": False, "gated": False, "downloads": 0, "likes": 0,
        "tags": list(card.get("tags", [])), "library_name": card.get("library_name"), "pipeline_tag": card.get("pipeline_tag"),
        **({"cardData": card} if card_data else {}), "siblings": [{"rfilename": p} for p in sorted(files)],
        "lastModified": "2026-11-27T00:00:00.000Z", "createdAt": "2026-11-27T00:00:00.000Z",
    }


def make_handler(state: HubState):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # keep test output quiet
            pass

        # --- helpers ---------------------------------------------------------------------
        @property
        def base(self) -> str:
            return f"http://{self.server.server_address[0]}:{self.server.server_address[1]}"

        def _body(self) -> bytes:
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, code: int, payload=None, headers: dict | None = None, body: bytes | None = None) -> None:
            data = body if body is not None else (json.dumps(payload).encode() if payload is not None else b"")
            self.send_response(code)
            self.send_header("Content-Type", "application/json" if body is None else "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def _error(self, code: int, code_name: str, message: str) -> None:
            self._send(code, {"error": message}, {"X-Error-Code": code_name, "X-Error-Message": message})

        def _repo(self, repo_id: str) -> Repo | None:
            repo = state.repos.get(repo_id)
            if repo is None:
                self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
            return repo

        # --- verbs -----------------------------------------------------------------------
        def do_HEAD(self):
            self._route("HEAD")

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_PUT(self):
            self._route("PUT")

        def do_DELETE(self):
            self._route("DELETE")

        def _route(self, method: str) -> None:
            url = urlparse(self.path)
            parts = [p for p in url.path.split("/") if p]
            query = parse_qs(url.query)
            state.requests.append(f"{method} {url.path}")
            with state.lock:
                try:
                    self._dispatch(method, parts, query)
                except BrokenPipeError:
                    pass

        def _dispatch(self, method: str, p: list[str], q: dict) -> None:
            if p[:2] == ["api", "whoami-v2"]:
                return self._send(200, {"name": "tester", "type": "user", "orgs": [{"name": "zoo-test"}], "auth": {"accessToken": {"role": "write"}}})
            if p[:3] == ["api", "repos", "create"] and method == "POST":
                return self._create(json.loads(self._body() or b"{}"))
            if p[:3] == ["api", "repos", "delete"]:
                body = json.loads(self._body() or b"{}")
                state.repos.pop(f"{body.get('organization') or 'tester'}/{body['name']}", None)
                return self._send(200, {})
            if p[:2] == ["api", "validate-yaml"]:
                self._body()
                return self._send(200, {"errors": [], "warnings": []})
            if p[:2] == ["api", "models"] and len(p) == 2:
                return self._list(q)
            if p[:2] == ["api", "models"] and len(p) >= 4:
                return self._api_model(method, p[2] + "/" + p[3], p[4:], q)
            if len(p) >= 4 and p[1].endswith(".git") and p[2:] == ["info", "lfs", "objects", "batch"][: len(p) - 2]:
                return self._lfs_batch(json.loads(self._body()))
            if p[:1] == ["lfs-upload"] and method == "PUT":
                data = self._body()
                if hashlib.sha256(data).hexdigest() != p[1]:
                    return self._error(400, "BadRequest", "sha256 mismatch")
                state.lfs[p[1]] = data
                return self._send(200, {})
            if len(p) >= 5 and p[2] == "resolve":
                return self._resolve(method, p[0] + "/" + p[1], p[3], "/".join(p[4:]))
            return self._error(404, "NotFound", f"no route for {method} {self.path}")

        def _create(self, body: dict) -> None:
            repo_id = f"{body.get('organization') or 'tester'}/{body['name']}"
            url = f"{self.base}/{repo_id}"
            if repo_id in state.repos:
                return self._send(409, {"error": "You already created this model repo", "url": url})
            repo = Repo(repo_id, bool(body.get("private")))
            repo.branches["main"] = state.new_commit(repo, {".gitattributes": FileEntry(b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n", False)})
            state.repos[repo_id] = repo
            self._send(200, {"url": url, "name": repo_id})

        def _list(self, q: dict) -> None:
            tags = set(q.get("filter", []))
            search = (q.get("search") or [""])[0]
            author = (q.get("author") or [None])[0]
            out = []
            # like the Hub, a listing carries each card's metadata only when asked (cardData or full)
            card_data = any(v in (["True"], ["true"]) for v in (q.get("cardData"), q.get("full")))
            for repo in state.repos.values():
                info = _model_info(self.base, repo, repo.branches["main"], card_data)
                if repo.private or not tags <= set(info["tags"]) or search not in repo.repo_id:
                    continue
                if author and info["author"] != author:
                    continue
                out.append(info)
            self._send(200, out)

        def _api_model(self, method: str, repo_id: str, rest: list[str], q: dict) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return
            if not rest or rest[0] == "revision":
                rev = unquote(rest[1]) if len(rest) > 1 else "main"
                sha = state.resolve(repo, rev)
                if sha is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
                return self._send(200, _model_info(self.base, repo, sha))
            if rest[0] == "tree":
                sha = state.resolve(repo, rest[1])
                if sha is None:
                    return self._error(404, "RevisionNotFound", f"Invalid rev id: {rest[1]}")
                entries = []
                for path, f in sorted(repo.commits[sha].items()):
                    e = {"type": "file", "path": path, "size": len(f.data), "oid": f.git_oid}
                    if f.lfs:
                        e["lfs"] = {"oid": f.sha256, "size": len(f.data), "pointerSize": 134}
                    entries.append(e)
                return self._send(200, entries)
            if rest[0] == "preupload":
                body = json.loads(self._body())
                files = [
                    {"path": f["path"], "uploadMode": "lfs" if f["path"].endswith(".safetensors") or f["size"] > 10_000_000 else "regular", "shouldIgnore": False}
                    for f in body["files"]
                ]
                return self._send(200, {"files": files})
            if rest[0] == "commit" and method == "POST":
                return self._commit(repo, unquote(rest[1]), self._body(), q)
            return self._error(404, "NotFound", f"no route for {method} {self.path}")

        def _lfs_batch(self, body: dict) -> None:
            objects = []
            for obj in body["objects"]:
                entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
                if obj["oid"] not in state.lfs:
                    entry["actions"] = {"upload": {"href": f"{self.base}/lfs-upload/{obj['oid']}", "expires_in": 3600}}
                objects.append(entry)
            self._send(200, {"transfer": "basic", "objects": objects, "hash_algo": "sha256"})

        def _commit(self, repo: Repo, rev: str, body: bytes, q: dict) -> None:
            parent = state.resolve(repo, rev)
            if parent is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            files = dict(repo.commits[parent])
            header = {}
            for line in body.decode().splitlines():
                if not line.strip():
                    continue
                item = json.loads(line)
                key, value = item["key"], item["value"]
                if key == "header":
                    header = value
                elif key == "file":
                    files[value["path"]] = FileEntry(base64.b64decode(value["content"]), False)
                elif key == "lfsFile":
                    if value["oid"] not in state.lfs:
                        return self._error(400, "BadRequest", f"LFS object {value['oid']} was never uploaded")
                    files[value["path"]] = FileEntry(state.lfs[value["oid"]], True)
                elif key == "deletedFile":
                    files.pop(value["path"], None)
                elif key == "deletedFolder":
                    files = {k: v for k, v in files.items() if not k.startswith(value["path"].rstrip("/") + "/")}
            sha = state.new_commit(repo, files)
            pr_url = None
            if q.get("create_pr", ["0"])[0] in ("1", "true", "True"):
                repo.prs += 1
                repo.branches[f"refs/pr/{repo.prs}"] = sha
                pr_url = f"{self.base}/{repo.repo_id}/discussions/{repo.prs}"
            else:
                repo.branches[rev] = sha
            self._send(200, {"commitUrl": f"{self.base}/{repo.repo_id}/commit/{sha}", "commitOid": sha, "pullRequestUrl": pr_url, "commitMessage": header.get("summary", "")})

        def _resolve(self, method: str, repo_id: str, rev: str, path: str) -> None:
            repo = self._repo(repo_id)
            if repo is None:
                return
            sha = state.resolve(repo, rev)
            if sha is None:
                return self._error(404, "RevisionNotFound", f"Invalid rev id: {unquote(rev)}")
            f = repo.commits[sha].get(unquote(path))
            if f is None:
                return self._error(404, "EntryNotFound", f"{path} does not exist at {rev}")
            headers = {"X-Repo-Commit": sha, "ETag": f'"{f.etag}"', "Accept-Ranges": "none"}
            if f.lfs:
                headers.update({"X-Linked-Etag": f'"{f.sha256}"', "X-Linked-Size": str(len(f.data))})
            if method == "GET" and path in state.break_next:
                state.break_next.discard(path)
                self.send_response(200)
                self.send_header("Content-Length", str(len(f.data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(f.data[: len(f.data) // 2])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(200, headers=headers, body=f.data)

    return Handler


class HubServer:
    def __init__(self):
        self.state = HubState()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(self.state))
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
