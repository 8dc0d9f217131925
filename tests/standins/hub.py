"""Local stand-ins for the Hugging Face Hub: its cache layout, a hub API server and an HTTPS
proxy, all on 127.0.0.1. Tests never touch the network."""
from __future__ import annotations

import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from standins.servers import _Server

# -- huggingface_hub's cache: <cache>/<type>s--ORG--NAME/{blobs, snapshots/<commit>, refs/<branch>} --

def cache_repo(cache: Path, repo_id: str, files: Path, commit: str, repo_type: str = "model",
               branch: str = "main") -> Path:
    """Put `files` (a directory's contents) into the cache as `repo_id` at `commit`; `branch` points there."""
    folder = cache / "--".join([f"{repo_type}s", *repo_id.split("/")])
    snapshot = folder / "snapshots" / commit
    for src in sorted(p for p in Path(files).rglob("*") if p.is_file()):
        data = src.read_bytes()
        blob = folder / "blobs" / hashlib.sha256(data).hexdigest()
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = snapshot / src.relative_to(files)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(Path("..", *[".."] * (len(link.relative_to(folder).parts) - 2), "blobs", blob.name))
    (folder / "refs").mkdir(parents=True, exist_ok=True)
    (folder / "refs" / branch).write_text(commit)
    return snapshot



class FakeHub(_Server):
    """The hub's repo-info API and file downloads, for `repos[(type, id)]`:
    {"refs": {branch: commit}, "dir": files of every commit} or {"error": an X-Error-Code}.
    `requests` lists every path asked for."""

    def __init__(self, repos: Dict[Tuple[str, str], dict], tls: Optional[ssl.SSLContext] = None):  # noqa: C901 - one handler, read top to bottom
        self.requests: List[str] = []
        hub = self

        def find(kind: str, rest: List[str], marker: str):
            """(repo, its entry, revision, path after it) for .../ORG/NAME/<marker>/REV/..."""
            if marker not in rest:
                return None
            i = rest.index(marker)
            repo_id = "/".join(rest[:i])
            return repo_id, repos.get((kind, repo_id), {"error": "RepoNotFound"}), rest[i + 1], "/".join(rest[i + 2:])

        class Handler(BaseHTTPRequestHandler):
            def do_HEAD(self):
                self.do_GET(body=False)

            def do_GET(self, body=True):
                hub.requests.append(self.path)
                parts = [p for p in self.path.split("?")[0].split("/") if p]
                if parts[:1] == ["api"]:  # /api/{models|datasets}/ORG/NAME/revision/REV
                    found = find(parts[1][:-1], parts[2:], "revision")
                else:  # /[datasets/]ORG/NAME/resolve/REV/PATH
                    kind = "dataset" if parts[:1] == ["datasets"] else "model"
                    found = find(kind, parts[1:] if kind == "dataset" else parts, "resolve")
                if found is None:
                    return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound"}, body)
                repo_id, repo, revision, path = found
                commit = repo.get("refs", {}).get(revision, revision if revision in repo.get("refs", {}).values()
                                                  else None)
                error = repo.get("error") or (None if commit else "RevisionNotFound")
                if error:
                    status = 403 if error == "GatedRepo" else 404
                    return self._send(status, b"{}", {"X-Error-Code": error}, body)
                if parts[:1] == ["api"]:
                    files = sorted(p.relative_to(repo["dir"]).as_posix() for p in Path(repo["dir"]).rglob("*")
                                   if p.is_file())
                    info = {"id": repo_id, "sha": commit, "siblings": [{"rfilename": f} for f in files]}
                    return self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)
                file = Path(repo["dir"]) / path
                if not file.is_file():
                    return self._send(404, b"{}", {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": commit}, body)
                data = file.read_bytes()
                self._send(200, data, {"X-Repo-Commit": commit, "ETag": f'"{hashlib.sha256(data).hexdigest()}"'}, body)

            def _send(self, status, data, headers, body):
                self.send_response(status)
                for k, v in {"Content-Length": str(len(data)), **headers}.items():
                    self.send_header(k, v)
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            server.socket = tls.wrap_socket(server.socket, server_side=True)
        super().__init__(server)


class ConnectProxy(_Server):
    """An HTTPS proxy: CONNECT host:443 opens a tunnel, here always to 127.0.0.1:`target_port`."""

    def __init__(self, target_port: int):
        self.connects: List[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_CONNECT(self):
                proxy.connects.append(self.path)
                upstream = socket.create_connection(("127.0.0.1", target_port), timeout=10)
                self.send_response(200, "Connection established")
                self.end_headers()
                pipes = [threading.Thread(target=_pipe, args=(a, b), daemon=True)
                         for a, b in ((self.connection, upstream), (upstream, self.connection))]
                for pipe in pipes:
                    pipe.start()
                for pipe in pipes:
                    pipe.join()

            def log_message(self, *args):
                pass

        super().__init__(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def self_signed(into: Path, host: str) -> Optional[Tuple[Path, Path]]:
    """(cert, key) for `host`, made with the openssl command; None where it is missing."""
    if shutil.which("openssl") is None:
        return None
    cert, key = into / "hub.pem", into / "hub.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
