"""A hub server on 127.0.0.1 that speaks the Hugging Face and ModelScope download endpoints.

The real ``huggingface_hub`` and ``modelscope`` clients download from it (point them at it with
``HF_ENDPOINT`` / ``MODELSCOPE_ENDPOINT`` or ``server.hf_env()`` / ``server.ms_env()``), so tests
run the clients' real code paths with no network. Repositories are built from bytes or local
folders given by the test; large files can be generated on the fly (``GeneratedFile``) so a
1 GB benchmark needs no disk. Faults on demand: drop the connection after N bytes, slow
transfers, 5xx answers, a wrong checksum in the metadata, a file listed but missing.

Only the stdlib is used, so plugin authors can reuse it without extra dependencies.
The endpoints and headers follow what huggingface_hub 2.4 and modelscope 1.40 send and expect.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

# Files at least this big, or with these suffixes, are served as LFS files (sha256 etag).
LFS_MIN_BYTES = 1024 * 1024
LFS_SUFFIXES = (".gguf", ".safetensors", ".bin", ".pth", ".pt", ".onnx", ".npz")
CHUNK = 64 * 1024


class GeneratedFile:
    """Deterministic pseudo-random bytes of ``size``, produced on demand (nothing on disk)."""

    def __init__(self, size: int, seed: int = 0, block: int = 1024 * 1024) -> None:
        self.size = size
        self._block = random.Random(seed).randbytes(block)
        self._sha256: str | None = None

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray()
        block = len(self._block)
        while length > 0 and offset < self.size:
            start = offset % block
            take = min(length, block - start, self.size - offset)
            out += self._block[start : start + take]
            offset += take
            length -= take
        return bytes(out)

    def chunks(self, chunk: int = 8 * 1024 * 1024) -> Iterator[bytes]:
        for offset in range(0, self.size, chunk):
            yield self.read(offset, chunk)

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            digest = hashlib.sha256()
            for piece in self.chunks():
                digest.update(piece)
            self._sha256 = digest.hexdigest()
        return self._sha256


class _BytesFile:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()

    def read(self, offset: int, length: int) -> bytes:
        return self.data[offset : offset + length]


Content = bytes | str | GeneratedFile


def _git_blob_oid(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Fault:
    """A misbehaviour for files matching ``path`` (a glob) in ``repo`` (a glob).

    kind: "drop" (close after ``after_bytes`` of the body), "slow" (``delay`` seconds per
    64 KiB), "status" (answer ``status`` to GETs), "checksum" (metadata advertises a wrong
    sha256), "missing" (listed, but the download answers 404), "corrupt" (serve flipped bytes),
    "hang" (a GET of the file gets no answer at all until the server stops: timeout tests),
    "redirect" (HEAD and GET answer 302 to ``location`` + ``/repo/path``, the file's metadata
    on the 302 as a CDN redirect has it).
    ``times`` limits how many requests it hits (None: every one).
    """

    kind: str
    path: str = "*"
    repo: str = "*"
    after_bytes: int = 0
    delay: float = 0.0
    status: int = 503
    location: str = ""
    times: int | None = None
    hits: int = 0

    def matches(self, repo: str, path: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return fnmatch.fnmatchcase(repo, self.repo) and fnmatch.fnmatchcase(path, self.path)


@dataclass
class Repo:
    """One repository: files by path, the commit they are at, and the branch names."""

    repo_id: str
    files: dict[str, _BytesFile | GeneratedFile]
    commit: str
    revisions: tuple[str, ...] = ("main", "master")

    def is_lfs(self, path: str) -> bool:
        return self.files[path].size >= LFS_MIN_BYTES or path.endswith(LFS_SUFFIXES)


@dataclass
class HubServer:
    """The server; start with ``start()`` (or use the ``hub_server`` pytest fixture)."""

    repos: dict[str, Repo] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    # Bytes of file bodies sent, by "repo/path"; and every request as "METHOD path", with its
    # headers at the same index in request_headers.
    bytes_sent: Counter[str] = field(default_factory=Counter)
    requests: list[str] = field(default_factory=list)
    request_headers: list[dict[str, str]] = field(default_factory=list)
    # Raw paths returned in listings instead of the real ones (path-escape tests).
    listing_overrides: dict[str, list[str]] = field(default_factory=dict)
    _httpd: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    # Set by stop(): releases requests held by a "hang" fault.
    _stopping: threading.Event = field(default_factory=threading.Event)

    # -- building repositories -------------------------------------------------------------
    def add_repo(
        self,
        repo_id: str,
        files: Mapping[str, Content] | None = None,
        folder: Path | None = None,
        revisions: tuple[str, ...] = ("main", "master"),
        commit: str | None = None,
    ) -> Repo:
        """Serve ``repo_id`` with ``files`` (path -> bytes/str/GeneratedFile) and/or ``folder``.

        ``commit`` is the 40-hex commit every revision names (default: one derived from the
        files); give the real hub's when a spec pins it, as a client asked for a commit
        files the download under that commit."""
        entries: dict[str, _BytesFile | GeneratedFile] = {}
        if folder is not None:
            for item in sorted(Path(folder).rglob("*")):
                if item.is_file():
                    entries[item.relative_to(folder).as_posix()] = _BytesFile(item.read_bytes())
        for path, content in (files or {}).items():
            if isinstance(content, GeneratedFile):
                entries[path] = content
            else:
                entries[path] = _BytesFile(
                    content.encode() if isinstance(content, str) else content
                )
        digest = hashlib.sha1(repo_id.encode())
        for path in sorted(entries):
            digest.update(path.encode() + b"\0" + entries[path].sha256.encode())
        repo = Repo(repo_id, entries, commit or digest.hexdigest(), revisions)
        self.repos[repo_id] = repo
        return repo

    def fault(self, kind: str, path: str = "*", **options: object) -> Fault:
        item = Fault(kind, path, **options)  # type: ignore[arg-type]
        self.faults.append(item)
        return item

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset_counters(self) -> None:
        with self._lock:
            self.bytes_sent.clear()
            self.requests.clear()
            self.request_headers.clear()

    @property
    def total_bytes_sent(self) -> int:
        return sum(self.bytes_sent.values())

    # -- running -------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        assert self._httpd is not None, "start() the server first"
        port = self._httpd.server_address[1]
        return f"http://127.0.0.1:{port}"

    def hf_env(self) -> dict[str, str]:
        """Environment variables that point huggingface_hub at this server."""
        return {
            "HF_ENDPOINT": self.url,
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
        }

    def ms_env(self) -> dict[str, str]:
        """Environment variables that point modelscope at this server."""
        return {"MODELSCOPE_ENDPOINT": self.url, "MODELSCOPE_DOWNLOAD_INTRA_CLOUD": "false"}

    def start(self) -> HubServer:
        server = self
        self._stopping.clear()

        class Handler(_Handler):
            hub = server

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lookups used by the handler -----------------------------------------------------------
    def _find_fault(self, kinds: tuple[str, ...], repo: str, path: str) -> Fault | None:
        with self._lock:
            for item in self.faults:
                if item.kind in kinds and item.matches(repo, path):
                    item.hits += 1
                    return item
        return None

    def _peek_fault(self, kind: str, repo: str, path: str) -> bool:
        return any(f.kind == kind and f.matches(repo, path) for f in self.faults)

    def _sha256(self, repo: Repo, path: str) -> str:
        real = repo.files[path].sha256
        if self._peek_fault("checksum", repo.repo_id, path):
            return hashlib.sha256(real.encode()).hexdigest()
        return real


class _QuietServer(ThreadingHTTPServer):
    """Clients that hang up (timeouts, drops: what the tests provoke) print no traceback."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # quiet: tests read .requests
        return None

    # -- plumbing --------------------------------------------------------------------------------
    def _send_json(
        self, payload: object, status: int = 200, headers: Mapping[str, str] = {}
    ) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str) -> None:
        self._send_json(
            {"error": message, "Code": status, "Message": message},
            status,
            {"X-Error-Code": code, "X-Error-Message": message},
        )

    def _repo(self, repo_id: str) -> Repo | None:
        repo = self.hub.repos.get(repo_id)
        if repo is None:
            self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
        return repo

    def _revision_ok(self, repo: Repo, revision: str) -> bool:
        if revision in repo.revisions or revision == repo.commit:
            return True
        self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
        return False

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_GET(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        path = unquote(url.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        with self.hub._lock:
            self.hub.requests.append(f"{self.command} {self.path}")
            self.hub.request_headers.append(dict(self.headers.items()))
        try:
            if path.startswith("/api/v1/models/"):
                self._modelscope(path[len("/api/v1/models/") :], query)
            elif path.startswith("/api/models/"):
                # Split the raw path: the client sends a revision as one quoted segment
                # (feature/x -> feature%2Fx), so unquoting first would split the revision.
                self._hf_api(url.path[len("/api/models/") :], query)
            elif "/resolve/" in url.path:
                repo_id, _, rest = url.path.lstrip("/").partition("/resolve/")
                revision, _, file_path = rest.partition("/")
                self._hf_resolve(unquote(repo_id), unquote(revision), unquote(file_path))
            else:
                self._error(404, "NotFound", f"no route for {path}")
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- Hugging Face --------------------------------------------------------------------------
    def _hf_api(self, rest: str, query: Mapping[str, str]) -> None:
        """``rest`` is still quoted: the revision is one segment, unquoted after the split."""
        for marker in ("/revision/", "/tree/"):
            if marker in rest:
                repo_id, _, tail = rest.partition(marker)
                break
        else:
            repo_id, tail, marker = rest, "main", "/revision/"
        repo = self._repo(unquote(repo_id))
        if repo is None:
            return
        quoted_revision, _, quoted_sub = tail.partition("/")
        revision, sub = unquote(quoted_revision), unquote(quoted_sub)
        if not self._revision_ok(repo, revision):
            return
        if marker == "/revision/":
            self._send_json(
                {
                    "id": repo.repo_id,
                    "modelId": repo.repo_id,
                    "sha": repo.commit,
                    "private": False,
                    "siblings": [{"rfilename": p} for p in self._listed_paths(repo)],
                }
            )
            return
        self._send_json(self._hf_tree(repo, sub))

    def _listed_paths(self, repo: Repo) -> list[str]:
        return self.hub.listing_overrides.get(repo.repo_id) or sorted(repo.files)

    def _hf_tree(self, repo: Repo, sub: str) -> list[dict[str, object]]:
        entries: list[dict[str, object]] = []
        folders: set[str] = set()
        for path in self._listed_paths(repo):
            if sub and not path.startswith(sub.rstrip("/") + "/"):
                continue
            parts = path.split("/")
            for depth in range(1, len(parts)):
                folders.add("/".join(parts[:depth]))
            item = repo.files.get(path)
            size = item.size if item is not None else 0
            entry: dict[str, object] = {
                "type": "file",
                "path": path,
                "size": size,
                "oid": hashlib.sha1(path.encode()).hexdigest(),
            }
            if item is not None and repo.is_lfs(path):
                entry["oid"] = hashlib.sha1(path.encode()).hexdigest()
                entry["lfs"] = {
                    "oid": self.hub._sha256(repo, path),
                    "size": size,
                    "pointerSize": 134,
                }
            elif isinstance(item, _BytesFile):
                entry["oid"] = _git_blob_oid(item.data)
            entries.append(entry)
        entries.extend(
            {"type": "directory", "path": f, "oid": "0" * 40, "size": 0} for f in sorted(folders)
        )
        return entries

    def _hf_resolve(self, repo_id: str, revision: str, file_path: str) -> None:
        repo = self._repo(repo_id)
        if repo is None or not self._revision_ok(repo, revision):
            return
        item = repo.files.get(file_path)
        if item is None or (
            self.command == "GET" and self.hub._find_fault(("missing",), repo_id, file_path)
        ):
            self._error(404, "EntryNotFound", f"{file_path} does not exist on {revision}")
            return
        headers = {"X-Repo-Commit": repo.commit, "Accept-Ranges": "bytes"}
        if repo.is_lfs(file_path):
            headers["ETag"] = f'"{self.hub._sha256(repo, file_path)}"'
            headers["X-Linked-Etag"] = headers["ETag"]
            headers["X-Linked-Size"] = str(item.size)
        else:
            assert isinstance(item, _BytesFile)
            headers["ETag"] = f'"{_git_blob_oid(item.data)}"'
        self._send_file(repo, file_path, item, headers)

    # -- ModelScope ----------------------------------------------------------------------------
    def _modelscope(self, rest: str, query: Mapping[str, str]) -> None:
        parts = rest.split("/")
        repo_id = "/".join(parts[:2])
        action = "/".join(parts[2:])
        repo = self._repo(repo_id)
        if repo is None:
            return
        revision = query.get("Revision") or "master"
        if action == "revisions":
            branches = [
                {"Revision": r, "CommitId": repo.commit, "CreatedAt": 0} for r in repo.revisions
            ]
            self._send_json(
                {
                    "Code": 200,
                    "Success": True,
                    "Data": {"RevisionMap": {"Branches": branches, "Tags": []}},
                }
            )
            return
        if not self._revision_ok(repo, revision):
            return
        if action == "repo/files":
            files = []
            for path in self._listed_paths(repo):
                item = repo.files.get(path)
                files.append(
                    {
                        "Path": path,
                        "Name": path.rsplit("/", 1)[-1],
                        "Type": "blob",
                        "Size": item.size if item is not None else 0,
                        "Sha256": self.hub._sha256(repo, path) if item is not None else "",
                        "Revision": repo.commit,
                        "IsLFS": repo.is_lfs(path) if item else False,
                    }
                )
            self._send_json({"Code": 200, "Success": True, "Data": {"Files": files}})
            return
        if action == "repo":
            file_path = query.get("FilePath", "")
            item = repo.files.get(file_path)
            if item is None or (
                self.command == "GET" and self.hub._find_fault(("missing",), repo_id, file_path)
            ):
                self._error(404, "EntryNotFound", f"{file_path} not found")
                return
            self._send_file(repo, file_path, item, {"Accept-Ranges": "bytes"})
            return
        if action == "":
            self._send_json(
                {
                    "Code": 200,
                    "Success": True,
                    "Data": {
                        "Name": repo_id.split("/")[-1],
                        "Path": repo_id.split("/")[0],
                        "Revision": revision,
                    },
                }
            )
            return
        self._error(404, "NotFound", f"no ModelScope route for {action}")

    # -- bodies with Range and faults --------------------------------------------------------
    def _send_file(
        self, repo: Repo, file_path: str, item: _BytesFile | GeneratedFile, headers: dict[str, str]
    ) -> None:
        key = f"{repo.repo_id}/{file_path}"
        redirect = self.hub._find_fault(("redirect",), repo.repo_id, file_path)
        if redirect is not None:
            self.send_response(302)
            self.send_header("Location", f"{redirect.location.rstrip('/')}/{key}")
            self.send_header("Content-Length", "0")
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            return
        if self.command == "GET" and self.hub._find_fault(("hang",), repo.repo_id, file_path):
            self.hub._stopping.wait()  # the connection is open; no byte of an answer comes
            self.close_connection = True
            return
        if self.command == "GET":
            status_fault = self.hub._find_fault(("status",), repo.repo_id, file_path)
            if status_fault is not None:
                self._error(status_fault.status, "ServerError", "injected server error")
                return
        start, end = 0, item.size - 1
        status = 200
        range_header = self.headers.get("Range")
        if range_header and range_header.startswith("bytes="):
            first, _, last = range_header[6:].split(",")[0].partition("-")
            start = int(first) if first else 0
            end = int(last) if last else item.size - 1
            if start >= item.size and item.size > 0:
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{item.size}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            end = min(end, item.size - 1)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end}/{item.size}"
        length = max(0, end - start + 1)
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        drop = self.hub._find_fault(("drop",), repo.repo_id, file_path)
        slow = self.hub._find_fault(("slow",), repo.repo_id, file_path)
        corrupt = self.hub._peek_fault("corrupt", repo.repo_id, file_path)
        sent = 0
        offset = start
        while sent < length:
            take = min(CHUNK, length - sent)
            if drop is not None:
                remaining = drop.after_bytes - sent
                if remaining <= 0:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                take = min(take, remaining)
            piece = item.read(offset, take)
            if corrupt and offset == 0:
                piece = bytes([piece[0] ^ 0xFF]) + piece[1:]
            self.wfile.write(piece)
            sent += len(piece)
            offset += len(piece)
            with self.hub._lock:
                self.hub.bytes_sent[key] += len(piece)
            if slow is not None and slow.delay:
                time.sleep(slow.delay)
        if drop is not None and sent >= drop.after_bytes:
            self.close_connection = True
