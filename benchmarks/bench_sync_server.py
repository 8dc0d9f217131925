"""`xlt sync` from an MLflow server on PostgreSQL against the same store on SQLite (issue 12).

    apt-get install postgresql && pip install -e ".[postgres]"
    python benchmarks/bench_sync_server.py [--runs 40] [--out benchmarks/results_sync_server.json]

One store, shaped like bench_sync.py's (2,000 training-loss points and 30 evaluation rounds
per run), is written twice: into SQLite and through `mlflow server` (2 workers, started here
on 127.0.0.1) into PostgreSQL. Timed, in this process, each a first sync into an empty Aim repo:
- sqlite: xlt sync reading the SQLite file (one SQL query per run);
- server, one request at a time: the REST path before issue 12, `get_metric_history` for one
  metric after another (the baseline);
- server: xlt sync as it is, its history requests in flight side by side.
"""
import argparse
import atexit
import json
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from bench_sync import build_store  # noqa: E402
from standins.postgres import MlflowServer, PostgresServer  # noqa: E402


def one_at_a_time(self, wanted):
    """The baseline: xlt sync's REST reads before issue 12, one metric's history after another."""
    for run_id, keys in wanted:
        yield {key: [(m.value, m.timestamp, m.step) for m in self.client.get_metric_history(run_id, key)]
               for key in keys}


def first_sync(uri, repo_dir):
    from aim import Repo

    from xlt.tracking.sync import sync

    Repo.from_path(str(repo_dir), init=True)  # created outside the timing
    start = time.perf_counter()
    report = sync(uri, repo_dir, progress=False)
    return time.perf_counter() - start, report.points


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_sync_server.json"))
    args = parser.parse_args()

    from xlt.core.console import quiet_third_party
    from xlt.tracking.mlflow_reader import MlflowReader

    quiet_third_party()  # MLflow's run links, printed as build_store ends each run
    # Removed at exit, after Aim's own clean-up threads have closed its repos.
    tmp = Path(tempfile.mkdtemp(prefix="xlt-bench-server-"))
    atexit.register(shutil.rmtree, tmp, True)
    (tmp / "artifacts").mkdir()
    postgres = PostgresServer()
    server = MlflowServer(postgres.uri, tmp / "artifacts")
    try:
        sqlite_uri = f"sqlite:///{tmp}/mlflow.db"
        _, _, total = build_store(sqlite_uri, args.runs)
        start = time.perf_counter()
        build_store(server.uri, args.runs)
        written_s = time.perf_counter() - start
        print(f"store: {args.runs} runs, {total:,} points (written to the server in {written_s:.1f} s)")
        results = {"runs": args.runs, "points": total, "machine": f"{platform.machine()}, {platform.processor()}",
                   "server": "mlflow server --workers 2 on PostgreSQL, 127.0.0.1"}
        results["sqlite_s"], points_sqlite = first_sync(sqlite_uri, tmp / "aim-sqlite")
        current = MlflowReader.read_ahead
        MlflowReader.read_ahead = one_at_a_time
        try:
            results["server_one_at_a_time_s"], points_baseline = first_sync(server.uri, tmp / "aim-baseline")
        finally:
            MlflowReader.read_ahead = current
        results["server_s"], points_server = first_sync(server.uri, tmp / "aim-server")
        assert points_sqlite == points_baseline == points_server == total, (points_sqlite, points_server, total)
    finally:
        server.stop()
        postgres.stop()

    s, b, x = results["sqlite_s"], results["server_one_at_a_time_s"], results["server_s"]
    print(f"first sync of {total:,} points: SQLite {s:.2f} s | server, one request at a time {b:.2f} s "
          f"({b / s:.2f}x SQLite) | server, xlt sync {x:.2f} s ({x / s:.2f}x SQLite)")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
