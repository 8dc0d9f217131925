"""A 1,000-job sweep's store: the skip check, `xlt report` and `xlt sync`, at 100 and 1,000 jobs.

    pip install -e ".[bench]"        # aim-mlflow, the baseline of the first sync
    python benchmarks/bench_big_sweep.py [--jobs 100 1000] [--before CHECKOUT] [--out benchmarks/results_big_sweep.json]

Each store is one sweep of finished jobs cloned from a real xlt job (benchmarks/big_store.py:
the smoke sweep's fine-tune job, run first by this script), in a local SQLite store with its
artifacts, as a laptop's sweep writes it. Timed, each in a new process as a user types it
(interpreter start and imports included) or, where marked, in this process:
- skip check: the rerun's look-up of finished runs by config hash (`finished_runs` for every job's
  hash, then `end_dead_runs`, as the sweeper does before launching), in this process;
- report: `xlt report --experiment big`, the command;
- sync first / unchanged: `xlt sync` into an empty Aim repo, then again with nothing new, in this process;
  the first sync with its default workers (a process per core, at most 4, where each has 100 runs or
  more to write) and with one process (`sync_first_serial_s`);
- aim-mlflow first: its `convert_existing_logs` on the same store (the baseline), in this process;
- floor: the same runs written with Aim's own API alone (`Run`, params and tags, `Run.track` per
  point, text artifacts as `Text`; all read beforehand), in this process: what Aim itself costs;
- params explorer: Aim's UI API answering the params explorer's query over every run
  (`aim up` on 127.0.0.1, `GET /api/runs/search/run/`), the whole streamed answer;
- with `--before CHECKOUT` (e.g. `git worktree add /tmp/before 1b2a00f`), the report and (on stores
  of at most `--before-sync-max` jobs) the first sync as commands with that checkout's xlt.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import big_store  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def command(*args, cwd=REPO, code=None):
    """Seconds a command took (with `code`: xlt imported from that checkout); exits on failure."""
    env = {**os.environ, "PYTHONPATH": str(code)} if code else None
    seconds, done = timed(lambda: subprocess.run(args, capture_output=True, text=True, cwd=code or cwd, env=env))
    if done.returncode:
        sys.exit(f"failed: {' '.join(map(str, args))}\n{done.stderr[-3000:]}")
    return seconds


def template_store(tmp: Path) -> str:
    out = tmp / "template"
    command(sys.executable, "run.py", "-m", "experiment=smoke", f"output_dir={out}", "tracking.aim.sync=false")
    return f"sqlite:///{out}/mlflow.db"


def skip_check(uri: str) -> float:
    import mlflow

    from xlt.tracking.store import end_dead_runs, finished_runs

    client = mlflow.MlflowClient(uri)
    experiment = client.get_experiment_by_name("big").experiment_id
    hashes = [r.data.tags["xlt.config_hash"] for r in client.search_runs([experiment], max_results=5000)
              if "xlt.config_hash" in r.data.tags]

    def check():
        found = finished_runs(uri, "big", hashes)
        end_dead_runs(uri, "big")
        return found

    seconds, found = timed(check)
    assert len(found) == len(hashes), (len(found), len(hashes))
    return seconds


def _texts(reader, run) -> dict:
    """path -> text of a run's text artifacts, read through its artifact store as the sync reads them."""
    from xlt.tracking.aim_writer import TEXT_SUFFIXES

    store = reader.artifacts(run)
    with tempfile.TemporaryDirectory() as tmp:
        return {path: reader.download(store, path, tmp).read_text() for path in reader.artifact_paths(store)
                if path.endswith(TEXT_SUFFIXES)}


def floor(uri: str, repo_dir: Path) -> float:
    """The same runs written with Aim's public API alone: a run each with its params and tags, every
    point through `Run.track`, its text artifacts as `Text`; everything read from MLflow beforehand."""
    from aim import Repo, Run, Text

    from xlt.tracking.mlflow_reader import MlflowReader

    reader = MlflowReader(uri)
    runs = reader.search([reader.client.get_experiment_by_name("big").experiment_id])
    histories = {}
    for run_id, key, points in reader.histories(runs, sorted({k for r in runs for k in r.data.metrics})):
        histories.setdefault(run_id, {})[key] = points
    texts = {r.info.run_id: _texts(reader, r) for r in runs}
    repo = Repo.from_path(str(repo_dir), init=True)

    def write():
        for run in runs:
            aim_run = Run(repo=repo, experiment="big", system_tracking_interval=None, capture_terminal_logs=False,
                          log_system_params=False)
            aim_run["params"], aim_run["tags"] = dict(run.data.params), dict(run.data.tags)
            for key, points in histories.get(run.info.run_id, {}).items():
                for value, _, step in points:
                    aim_run.track(value, name=key, step=step)
            for path, text in texts[run.info.run_id].items():
                aim_run.track(Text(text), name=path, context={"type": "artifact"})
            aim_run.close()

    return timed(write)[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def params_explorer(repo_dir: Path) -> dict:
    """Seconds and bytes of Aim's UI API answering the params explorer over every run."""
    port = free_port()
    aim = Path(sys.executable).with_name("aim")
    server = subprocess.Popen([str(aim), "up", "--repo", str(repo_dir), "--host", "127.0.0.1", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}/api"
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/projects/", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        query = "?q=&skip_system=true&report_progress=false"  # what the params explorer asks for
        seconds, body = timed(lambda: urllib.request.urlopen(f"{base}/runs/search/run/{query}", timeout=600).read())
        return {"seconds": seconds, "bytes": len(body)}
    finally:  # `aim up` and its uvicorn child: the whole group, or uvicorn outlives it
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(30)


def before(uri: str, where: Path, n_jobs: int, code: Path, sync_max: int) -> dict:
    """The same commands with xlt before issue 37 (a checkout at `code`): the report, and the first sync
    (as a command: imports included) where the store is small enough to wait for it."""
    result = {"report_command_s": command(sys.executable, "-m", "xlt.cli", "report", "--mlflow-tracking-uri", uri,
                                          "--experiment", "big", "--out", str(where / "report_before"), code=code)}
    if n_jobs <= sync_max:
        result["sync_first_command_s"] = command(sys.executable, "-m", "xlt.cli", "sync", "--mlflow-tracking-uri",
                                                 uri, "--aim-repo", str(where / "aim_before"), code=code)
    return result


def measure(n_jobs: int, template: dict, tmp: Path, args) -> dict:
    from aim import Repo
    from aimlflow.utils import convert_existing_logs

    from xlt.tracking.sync import sync
    from xlt.tracking.sync_workers import workers_for

    where = tmp / f"jobs{n_jobs}"
    where.mkdir()
    uri = f"sqlite:///{where}/mlflow.db"
    build_s, _ = timed(lambda: big_store.build(uri, where / "artifacts", n_jobs, template))
    result = {"jobs": n_jobs, "build_s": build_s, "skip_check_s": skip_check(uri)}
    result["report_command_s"] = command(sys.executable, "-m", "xlt.cli", "report", "--mlflow-tracking-uri", uri,
                                         "--experiment", "big", "--out", str(where / "report"))
    Repo.from_path(str(where / "aim"), init=True)  # created outside the timings, for every side
    result["sync_first_s"], counts = timed(lambda: sync(uri, where / "aim", progress=False))
    result["sync_points"] = counts.points
    result["sync_workers"] = workers_for(n_jobs + 1)  # the jobs and their sweep's run
    result["sync_unchanged_s"], _ = timed(lambda: sync(uri, where / "aim", progress=False))
    Repo.from_path(str(where / "aim_serial"), init=True)
    result["sync_first_serial_s"], _ = timed(lambda: sync(uri, where / "aim_serial", progress=False, workers=1))
    result["floor_s"] = floor(uri, where / "floor")
    baseline = Repo.from_path(str(where / "aimlflow"), init=True)
    result["aimlflow_first_s"], _ = timed(lambda: convert_existing_logs(baseline, uri, excluded_artifacts=[]))
    result["params_explorer"] = params_explorer(where / "aim")
    result["sync_first_command_s"] = command(sys.executable, "-m", "xlt.cli", "sync", "--mlflow-tracking-uri", uri,
                                             "--aim-repo", str(where / "aim_command"))
    if args.before:
        result["before"] = before(uri, where, n_jobs, args.before, args.before_sync_max)
    return result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--template", help="an MLflow store holding an xlt fine-tune job (default: the smoke "
                        "sweep's, run first)")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_big_sweep.json"))
    parser.add_argument("--before", type=Path, help="a checkout of xlt before issue 37: its report and sync timed too")
    parser.add_argument("--before-sync-max", type=int, default=100, help="the largest store its sync is timed on")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="xlt-bench-big-") as tmp:
        tmp = Path(tmp)
        template = big_store.read_template(args.template or template_store(tmp))
        results = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "load_before": os.getloadavg()[0],
                   "points_per_job": sum(len(h) for h in template["histories"].values()),
                   "stores": [measure(n, template, tmp, args) for n in args.jobs]}
    for r in results["stores"]:
        print(json.dumps(r))
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
