"""A one-node SLURM cluster (Debian's slurmctld, slurmd and munge) on 127.0.0.1, stopped by PID."""
from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Optional

from standins.servers import free_port


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
