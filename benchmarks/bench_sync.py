"""MLflow -> Aim sync benchmark: `xlt sync` against aim-mlflow 0.2.1, same store, one invocation.

    pip install -e ".[bench]"    # aim-mlflow==0.2.1, the baseline
    python benchmarks/bench_sync.py [--runs 40] [--out benchmarks/results_sync.json]

The store is sized like a real sweep: each run has 2,000 training-loss points and 30
evaluation rounds of accuracy and loss for six languages (40 runs: 94,400 points). Timed, in
this process (interpreter start and imports excluded, the same for both tools):
- floor: the same points written with Aim's own `Run.track` and nothing else;
- first: the first sync into an empty Aim repo;
- unchanged: a second sync with nothing new;
- incremental: a sync after a few hundred new points in two runs that trained on.
aim-mlflow's one pass is its `convert_existing_logs` (its `sync` command runs that, then
watches forever). Its runs are left unindexed, so the number flatters it slightly. Every
side gets its Aim repo created before its clock starts (creating one takes about 1 s).
"""
import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
T0 = 1_700_000_000_000


def points(step_range, eval_every):
    from mlflow.entities import Metric

    out = []
    for step in step_range:
        out.append(Metric("train/loss", 1.1 - step / 4000, T0 + step * 100, step))
        if step % eval_every == 0 and step:
            for lang in LANGS:
                out.append(Metric(f"validation/{lang}/accuracy", 0.33 + step / 6000, T0 + step * 100, step))
                out.append(Metric(f"validation/{lang}/loss", 1.1 - step / 5000, T0 + step * 100, step))
    return out


def log(client, run_id, metrics):
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


def build_store(uri, n_runs, steps=2000, rounds=30):
    """An MLflow store shaped like an xlt sweep; returns (client, run ids, points)."""
    import mlflow
    from mlflow.entities import Param

    client = mlflow.MlflowClient(uri)
    exp = client.create_experiment("bench")
    run_ids, total = [], 0
    for i in range(n_runs):
        run = client.create_run(exp, run_name=f"model{i % 4}-technique{i % 2}",
                                tags={"xlt.model": f"model{i % 4}", "xlt.sweep_id": "bench"})
        client.log_batch(run.info.run_id, params=[Param("train.batch_size", "8"), Param("train.learning_rate", "5e-05"),
                                                  Param("model.name", f"model{i % 4}"), Param("seed", str(i))])
        metrics = points(range(steps), steps // rounds)
        log(client, run.info.run_id, metrics)
        if i >= 2:  # two runs are still training when the sweep is first synced
            client.set_terminated(run.info.run_id, "FINISHED")
        run_ids.append(run.info.run_id)
        total += len(metrics)
    return client, run_ids, total


def floor(repo_dir, client, run_ids):
    """Writing the same points with Aim's public `Run.track`, histories already in memory."""
    from aim import Repo, Run

    histories = []
    for rid in run_ids:
        run = client.get_run(rid)
        histories.append({key: client.get_metric_history(rid, key) for key in run.data.metrics})
    repo = Repo.from_path(str(repo_dir), init=True)
    start = time.perf_counter()
    for history in histories:
        aim_run = Run(repo=repo, experiment="bench", system_tracking_interval=None, capture_terminal_logs=False)
        for key, series in history.items():
            for m in series:
                aim_run.track(m.value, name=key, step=m.step)
        aim_run.close()
    return time.perf_counter() - start


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("results_sync.json"))
    args = parser.parse_args()

    from aim import Repo
    from aimlflow.utils import convert_existing_logs

    from xlt.tracking.sync import sync

    with tempfile.TemporaryDirectory(prefix="xlt-bench-sync-") as tmp:
        tmp = Path(tmp)
        uri = f"sqlite:///{tmp}/mlflow.db"
        client, run_ids, total = build_store(uri, args.runs)
        print(f"store: {args.runs} runs, {total:,} points")
        results = {"points": total, "runs": args.runs, "machine": f"{platform.machine()}, {platform.processor()}",
                   "floor_run_track_s": floor(tmp / "floor", client, run_ids)}

        aimlflow_repo = Repo.from_path(str(tmp / "aimlflow"), init=True)
        def convert():
            return convert_existing_logs(aimlflow_repo, uri, excluded_artifacts=[])

        results["aimlflow"] = {"first_s": timed(convert), "unchanged_s": timed(convert)}
        Repo.from_path(str(tmp / "xlt"), init=True)  # created outside the timing, as for the others
        results["xlt"] = {"first_s": timed(lambda: sync(uri, tmp / "xlt", progress=False)),
                          "unchanged_s": timed(lambda: sync(uri, tmp / "xlt", progress=False))}
        # The same, as a user types it: a new interpreter, imports (mlflow, aim) included.
        command = [sys.executable, "-m", "xlt.cli", "sync", "--mlflow-tracking-uri", uri,
                   "--aim-repo", str(tmp / "xlt")]
        results["xlt"]["unchanged_command_wall_s"] = timed(lambda: subprocess.run(command, check=True,
                                                                                  capture_output=True))

        new = 0
        for rid in run_ids[:2]:  # the two running runs log 150 more steps each
            more = points(range(2000, 2150), 2000 // 30)
            log(client, rid, more)
            new += len(more)
        results["new_points"] = new
        results["aimlflow"]["incremental_s"] = timed(lambda: convert_existing_logs(aimlflow_repo, uri,
                                                                                   excluded_artifacts=[]))
        report = {}
        results["xlt"]["incremental_s"] = timed(lambda: report.update(vars(sync(uri, tmp / "xlt", progress=False))))
        results["xlt"]["incremental_points_written"] = report["points"]

    f, a, x = results["floor_run_track_s"], results["aimlflow"], results["xlt"]
    print(f"floor (Aim Run.track alone): {f:.2f} s")
    print(f"{'pass':<12} {'aim-mlflow':>11} {'xlt sync':>9} {'speed-up':>9}")
    for key in ("first_s", "unchanged_s", "incremental_s"):
        print(f"{key[:-2]:<12} {a[key]:>10.2f}s {x[key]:>8.2f}s {a[key] / x[key]:>8.1f}x")
    print(f"xlt first sync / floor: {x['first_s'] / f:.2f}; incremental wrote {x['incremental_points_written']} "
          f"of {results['new_points']} new points; `xlt sync` command on the unchanged store: "
          f"{x['unchanged_command_wall_s']:.2f} s wall")
    args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
