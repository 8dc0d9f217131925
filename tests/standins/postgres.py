"""A PostgreSQL server (Debian's package) and an MLflow tracking server on it, on 127.0.0.1, stopped by PID."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import List, Optional

from standins.servers import free_port


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
