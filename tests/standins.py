"""Local stand-ins for the Hugging Face Hub: its cache layout, a copy of the facebook/xnli repo,
a hub API server, a server that never answers, and an HTTPS proxy; and real servers started on
127.0.0.1 for the tests: PostgreSQL, MLflow, a one-node SLURM cluster. Tests never touch the network.
"""
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

LANGS = ("en", "de", "fr", "es", "ar", "zh")


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



def tiny_checkpoint(into: Path, kind: str = "bert", seed: int = 0) -> Path:
    """A tiny random checkpoint saved from the class its hub repo uses, with a tokenizer."""
    import torch
    from transformers import (
        BertConfig,
        BertForPreTraining,
        DistilBertConfig,
        DistilBertForMaskedLM,
        XLMRobertaConfig,
        XLMRobertaForMaskedLM,
    )

    from xlt.model.loading import build_tiny_tokenizer

    tok = build_tiny_tokenizer(300)
    shape = dict(vocab_size=len(tok), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=32, max_position_embeddings=160)
    torch.manual_seed(seed)
    if kind == "bert":
        model = BertForPreTraining(BertConfig(**shape, pad_token_id=tok.pad_token_id))
    elif kind == "xlmr":
        model = XLMRobertaForMaskedLM(XLMRobertaConfig(**shape, pad_token_id=tok.pad_token_id))
    else:
        model = DistilBertForMaskedLM(DistilBertConfig(vocab_size=len(tok), dim=16, n_layers=1, n_heads=2,
                                                       hidden_dim=32, max_position_embeddings=160,
                                                       pad_token_id=tok.pad_token_id))
    model.save_pretrained(into)
    tok.save_pretrained(into)
    return into


# -- local copies of the facebook/xnli and google-research-datasets/paws-x repos, as the hub has them --

README = """---
language: [{langs}]
pretty_name: {name} (local copy for tests)
configs:
{configs}
---
# {name} (a local copy of {repo}'s layout)

Rows from XNLI 1.0 (CC BY-NC 4.0). {train}
"""
ENGLISH_TRAIN = ("Train files of languages other than English hold the English MultiNLI rows: only their size "
                 "and place matter to the tests.")
POOL_TRAIN = ("Train files of languages other than English hold the last {pool} validation rows of that "
              "language (a target-language pool, in its language); validation keeps the rest.")


def _xnli_rows(xnli: Path, lang: str, split: str, pool: Optional[int], train_rows: Optional[int]) -> dict:
    """XNLI rows standing in for a (language, split): see README above for the train files."""
    from xlt.config import task_preset
    from xlt.data.jsonl import read_jsonl

    task = task_preset("xnli")
    if split == "test":
        return read_jsonl(xnli / f"test.{lang}.jsonl", task)
    if split == "validation" or (pool and lang != "en"):
        rows = read_jsonl(xnli / f"validation.{lang}.jsonl", task)
        cut = slice(-pool, None) if split == "train" else slice(None, -pool if pool else None)
        return {k: v[cut] for k, v in rows.items()}
    train = read_jsonl(xnli / "train.en.jsonl", task)
    if train_rows:  # the real train split's size (392,702 rows), from the rows at hand
        reps = -(-train_rows // len(train["label"]))
        train = {k: (v * reps)[:train_rows] for k, v in train.items()}
    return train


def _as_pawsx(rows: dict) -> dict:
    """XNLI pairs as PAWS-X rows: paraphrase (1) where the premise entails the hypothesis."""
    return {"id": list(range(1, len(rows["label"]) + 1)), "sentence1": rows["premise"],
            "sentence2": rows["hypothesis"], "label": [int(label == 0) for label in rows["label"]]}


def _features(task: str):
    import datasets

    text = datasets.Value("string")
    if task == "pawsx":
        return datasets.Features({"id": datasets.Value("int32"), "sentence1": text, "sentence2": text,
                                  "label": datasets.ClassLabel(names=["0", "1"])})
    return datasets.Features({"premise": text, "hypothesis": text,
                              "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})


MIRRORED = {"xnli": ("XNLI", "facebook/xnli"), "pawsx": ("PAWS-X", "google-research-datasets/paws-x")}


def dataset_mirror(into: Path, xnli: Path, task: str = "xnli", langs=LANGS, pool: Optional[int] = None,
                   train_rows: Optional[int] = None) -> Path:
    """The hub repo of `task` in its layout: <lang>/<split>-00000-of-00001.parquet, README `configs:`,
    label a ClassLabel; rows from the XNLI at `xnli` (PAWS-X's: XNLI pairs, entailment = paraphrase).
    `pool`: each target language's train file is its last `pool` validation rows."""
    import datasets
    import pyarrow.parquet as pq

    configs = []
    for lang in langs:
        configs.append(f"- config_name: {lang}\n  data_files:")
        for split in ("train", "test", "validation"):
            rows = _xnli_rows(xnli, lang, split, pool, train_rows)
            rows = _as_pawsx(rows) if task == "pawsx" else rows
            path = into / lang / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # Repeated rows (train_rows) would shrink to their dictionary: store them plain, as real text is.
            table = datasets.Dataset.from_dict(rows, features=_features(task)).data.table  # features in its metadata
            pq.write_table(table, path, use_dictionary=not (train_rows and split == "train"))
            configs.append(f"  - split: {split}\n    path: {lang}/{split}-*")
    name, repo = MIRRORED[task]
    train = POOL_TRAIN.format(pool=pool) if pool else ENGLISH_TRAIN
    (into / "README.md").write_text(README.format(langs=", ".join(langs), configs="\n".join(configs),
                                                  name=name, repo=repo, train=train))
    return into


def xnli_mirror(into: Path, xnli: Path, langs=LANGS, train_rows: Optional[int] = None) -> Path:
    """`facebook/xnli`'s layout, every train file English (`dataset_mirror`)."""
    return dataset_mirror(into, xnli, "xnli", langs, train_rows=train_rows)


def jsonl_copy(into: Path, xnli: Path, task: str = "xnli", langs=LANGS, pool: Optional[int] = None) -> Path:
    """The same rows as `dataset_mirror`, as data=jsonl reads them: {split}.{lang}.jsonl."""
    import json

    into.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        for split in ("train", "validation", "test"):
            rows = _xnli_rows(xnli, lang, split, pool, None)
            rows = _as_pawsx(rows) if task == "pawsx" else rows
            lines = [json.dumps(dict(zip(rows, values)), ensure_ascii=False) for values in zip(*rows.values())]
            (into / f"{split}.{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return into


# -- servers on 127.0.0.1 -----------------------------------------------------------------

class _Server:
    def __init__(self, server):
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def silent_server() -> Tuple[socket.socket, int]:
    """A port that accepts connections and never answers (the kernel completes the handshake)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock, sock.getsockname()[1]


def free_port() -> int:
    """A port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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


# -- a PostgreSQL server (Debian's package) and an MLflow tracking server on it ------------

def postgres_bin() -> Optional[Path]:
    """Where initdb and pg_ctl are: on PATH, or Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent  # the real bin directory, which has createdb too
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    return versions[-1].parent if versions else None


class PostgresServer:
    """`initdb` + `pg_ctl` into a temporary directory, on 127.0.0.1; stopped by its PID.

    PostgreSQL refuses to run as root: as root, the server runs as the package's `postgres` user.
    """

    def __init__(self, database: str = "mlflow"):
        import os
        import pwd
        import tempfile

        bin_dir = postgres_bin()
        assert bin_dir, "PostgreSQL not installed (apt-get install postgresql)"
        self.dir = Path(tempfile.mkdtemp(prefix="xlt-pg-"))  # under /tmp: the postgres user can enter it
        self.port = free_port()
        self.as_user: List[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self.as_user = ["runuser", "-u", "postgres", "--"]
        data = self.dir / "data"
        self._run(bin_dir / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        self._run(bin_dir / "pg_ctl", "-D", data, "-l", self.dir / "server.log", "-w", "-o",
                  f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start")
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        self._run(bin_dir / "createdb", "-h", "127.0.0.1", "-p", self.port, "-U", "postgres", database)
        self.uri = f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args) -> None:
        subprocess.run([*self.as_user, *map(str, args)], check=True, capture_output=True, timeout=120)

    def stop(self) -> None:
        import os
        import signal
        import time

        try:
            os.kill(self.pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            for _ in range(100):
                os.kill(self.pid, 0)
                time.sleep(0.1)
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)


class MlflowServer:
    """`mlflow server` on 127.0.0.1 over `backend_uri`, artifacts served from `artifacts`."""

    def __init__(self, backend_uri: str, artifacts: Path, workers: int = 2):
        import sys
        import time
        import urllib.request

        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        self.log = open(artifacts.parent / f"mlflow-server-{self.port}.log", "w")
        mlflow = Path(sys.executable).parent / "mlflow"
        self.process = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", backend_uri, "--artifacts-destination", str(artifacts),
             "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(workers)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        for _ in range(600):
            try:
                urllib.request.urlopen(self.uri + "/health", timeout=1)
                return
            except OSError:
                assert self.process.poll() is None, f"mlflow server exited: see {self.log.name}"
                time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"mlflow server did not start in 120 s: see {self.log.name}")

    def stop(self) -> None:
        import os
        import signal

        try:
            os.killpg(self.process.pid, signal.SIGTERM)  # the server and its workers
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


# -- a one-node SLURM cluster (Debian's slurmctld, slurmd and munge) on 127.0.0.1 -------------

def _sbin(name: str) -> Optional[str]:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin")


def slurm_missing() -> Optional[str]:
    """Why a SLURM cluster cannot be started here, or None."""
    import os

    missing = [name for name in ("munged", "slurmctld", "slurmd", "sbatch", "sinfo") if not _sbin(name)]
    if missing:
        return f"SLURM not installed (apt-get install slurmctld slurmd slurm-client munge): no {', '.join(missing)}"
    if os.geteuid() != 0:
        return "slurmd starts jobs as their users, so it runs as root"
    return None


class SlurmCluster:
    """munged, slurmctld and slurmd configured in a temporary directory: this machine as the one
    node of one partition, on 127.0.0.1, no accounting. Stopped by PID. Commands find it
    through `env` (SLURM_CONF)."""

    def __init__(self, cpus: int = 2, memory_mb: int = 8000):
        import os
        import tempfile
        import time

        self.dir = d = Path(tempfile.mkdtemp(prefix="xlt-slurm-"))
        key = d / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
        self._run(_sbin("munged"), "--force", f"--key-file={key}", f"--socket={d / 'munge.sock'}",
                  f"--log-file={d / 'munged.log'}", f"--pid-file={d / 'munged.pid'}",
                  f"--seed-file={d / 'munged.seed'}")
        host = socket.gethostname().split(".")[0]
        (d / "state").mkdir()
        (d / "spool").mkdir()
        conf = d / "slurm.conf"
        conf.write_text(f"""ClusterName=xlt-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={d / 'munge.sock'}
SlurmUser=root
StateSaveLocation={d / 'state'}
SlurmdSpoolDir={d / 'spool'}
SlurmctldPidFile={d / 'slurmctld.pid'}
SlurmdPidFile={d / 'slurmd.pid'}
SlurmctldLogFile={d / 'slurmctld.log'}
SlurmdLogFile={d / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
""")
        self.env = {"SLURM_CONF": str(conf)}
        self._run(_sbin("slurmctld"), "-f", conf)
        self._run(_sbin("slurmd"), "-f", conf)
        for _ in range(300):
            state = subprocess.run([_sbin("sinfo"), "-h", "-o", "%T"], capture_output=True, text=True,
                                   env={**os.environ, **self.env}, timeout=30).stdout.strip()
            if state == "idle":
                return
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"the SLURM node did not come up in 60 s: see {d}/slurmctld.log and slurmd.log")

    def _run(self, *args) -> None:
        subprocess.run(list(map(str, args)), check=True, capture_output=True, timeout=60)

    def stop(self) -> None:
        import os
        import signal
        import time

        for name in ("slurmd", "slurmctld", "munged"):
            try:
                pid = int((self.dir / f"{name}.pid").read_text().split()[0])
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(pid, 0)
                    time.sleep(0.1)
                os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ValueError, ProcessLookupError):
                pass
        shutil.rmtree(self.dir, ignore_errors=True)
