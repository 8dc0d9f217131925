"""`xlt aim-up`: Aim's UI, and no server left behind when it is stopped."""
import signal
import socket
import subprocess
import sys
import time

import pytest

from standins.servers import free_port


def serving(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.heavy  # in CI's second run: the default run stays under 10 minutes
@pytest.mark.slow
def test_a_stop_signal_ends_aims_server_too(tmp_path):
    from aim.sdk.repo import Repo

    Repo.from_path(str(tmp_path / "aim"), init=True)
    port = free_port()
    ui = subprocess.Popen([sys.executable, "-m", "xlt.cli", "aim-up", "--repo", str(tmp_path / "aim"),
                           "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 90
        while not serving(port) and time.monotonic() < deadline and ui.poll() is None:
            time.sleep(0.5)
        assert serving(port), "Aim's UI did not start"
        ui.send_signal(signal.SIGTERM)  # as `kill PID` or a scheduler would; `aim up` alone leaves uvicorn
        assert ui.wait(timeout=30) == 0
        assert f"xlt aim-up: http://127.0.0.1:{port}" in ui.stdout.read()
        leftover = subprocess.run(["pgrep", "-f", "--", f"--port {port}"], capture_output=True, text=True)
        assert leftover.returncode == 1 and not serving(port), leftover.stdout  # 1: no such process
    finally:
        ui.kill()
        subprocess.run(["pkill", "-f", "--", f"--port {port}"])


def test_aim_up_needs_an_aim_repository(tmp_path):
    result = subprocess.run([sys.executable, "-m", "xlt.cli", "aim-up", "--repo", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == (f"xlt: error: --repo: {str(tmp_path)!r} is no Aim repository; "
                                     "a sweep or `xlt sync` makes one")
