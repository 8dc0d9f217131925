"""`xlt sync`, read back through Aim's SDK and compared with MLflow point by point; in this process but where
a kill, a signal or a damaged repository is the point."""
import os
import signal
import struct
import sys
import zlib
from types import SimpleNamespace

import pytest

from commands import xlt_cli

LANGS = ["en", "de", "zh"]


def png(path):
    """A valid 1x1 PNG, without needing an image library."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


def log_points(client, run_id, steps, t0=1_700_000_000_000):
    from mlflow.entities import Metric

    metrics = []
    for step in steps:
        metrics.append(Metric("train/loss", 1.0 / (step + 1), t0 + step, step))
        if step % 10 == 0:
            for lang in LANGS:
                metrics.append(Metric(f"validation/{lang}/accuracy", 0.3 + step / 1000, t0 + step, step))
            metrics.append(Metric("system/gpu_util", 50.0 + step % 7, t0 + step, 0))  # no step given
    for i in range(0, len(metrics), 1000):
        client.log_batch(run_id, metrics=metrics[i:i + 1000])


@pytest.fixture
def store(tmp_path):
    """Two experiments, three runs: one still RUNNING, with params, tags, text and image artifacts."""
    import mlflow

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = mlflow.MlflowClient(uri)
    runs = []
    for exp_name, n in (("alpha", 2), ("beta", 1)):
        exp = client.create_experiment(exp_name, artifact_location=(tmp_path / "artifacts").as_uri())
        for i in range(n):
            run = client.create_run(exp, run_name=f"{exp_name}-{i}", tags={"xlt.model": "tiny", "team": "nlp"})
            rid = run.info.run_id
            client.log_batch(rid, params=[mlflow.entities.Param(k, v) for k, v in
                                          {"train.batch_size": "16", "train.learning_rate": "5e-05",
                                           "train.bf16": "True", "model.path": "None", "languages": "en,de"}.items()])
            log_points(client, rid, range(0, 120))
            client.log_text(rid, "model: tiny\n", "config/resolved.yaml")
            png(tmp_path / "curve.png")
            client.log_artifact(rid, str(tmp_path / "curve.png"), "plots")
            runs.append(rid)
    for rid in runs[1:]:
        client.set_terminated(rid, "FINISHED")
    return tmp_path, uri, client, runs


def xlt_sync(*args, fault=""):
    """`xlt sync ARGS` in a real process: for a kill, a signal, an exit status read from outside."""
    return xlt_cli("sync", *args, fault=fault)


def sync_here(capsys, *args):
    """`xlt sync ARGS` in this process, as the command line calls it (no interpreter start-up)."""
    from xlt.cli.main import main

    capsys.readouterr()
    code = main(["sync", *args])
    said = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=said.out, stderr=said.err)


def aim_view(repo_dir):
    """{mlflow run id: (run, {(name, context items): [(step, value, timestamp)]})} via Aim's SDK."""
    from aim import Repo

    repo = Repo(str(repo_dir))
    view = {}
    for run in repo.iter_runs():
        series = {}
        for metric in repo.query_metrics(f"run.hash == '{run.hash}'", report_mode=0):
            steps, (values, _, times) = metric.data.items_list()
            key = (metric.name, tuple(sorted(metric.context.to_dict().items())))
            series[key] = sorted(zip(steps, values, times))
        view[run["mlflow_run_id"]] = (run, series)
    return view


def assert_same(client, repo_dir, run_ids):
    from xlt.tracking.aim_writer import aim_name

    view = aim_view(repo_dir)
    assert sorted(view) == sorted(run_ids)
    for rid in run_ids:
        run, series = view[rid]
        mlflow_run = client.get_run(rid)
        assert run["params"]["train.batch_size"] == 16 and run["params"]["train.bf16"] is True
        assert run["params"]["train.learning_rate"] == 5e-05 and run["params"]["model.path"] is None
        assert run["params"]["languages"] == "en,de" and run["tags"] == {"xlt.model": "tiny", "team": "nlp"}
        assert run["mlflow"]["status"] == mlflow_run.info.status and run.name == mlflow_run.info.run_name
        assert run.experiment == client.get_experiment(mlflow_run.info.experiment_id).name
        for key in mlflow_run.data.metrics:
            name, context = aim_name(key)
            history = client.get_metric_history(rid, key)
            points = series[(name, tuple(sorted(context.items())))]
            assert len(points) == len(history), key
            assert [v for _, v, _ in points] == [m.value for m in history]
            assert [t for _, _, t in points] == pytest.approx([m.timestamp / 1000 for m in history])
        assert len(series) == len(mlflow_run.data.metrics)


def test_names_map_to_aim_name_and_context():
    from xlt.tracking.aim_writer import aim_name, typed

    assert aim_name("validation/de/accuracy") == ("accuracy", {"subset": "validation", "lang": "de"})
    assert aim_name("train/loss") == ("loss", {"subset": "train"})
    # The mean over target languages is no language: charts divided by language leave it out.
    assert aim_name("validation/target_mean/accuracy") == ("target_mean_accuracy", {"subset": "validation"})
    assert aim_name("system/gpu_util") == ("system/gpu_util", {})
    assert [typed(v) for v in ("16", "5e-05", "True", "None", "en,de", "[1, 2]", "abc")] == \
        [16, 5e-05, True, None, "en,de", [1, 2], "abc"]


def test_sync_converts_everything_then_only_what_is_new(store, capsys):
    tmp_path, uri, client, runs = store
    repo = tmp_path / "aim"
    first = sync_here(capsys, "--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert first.returncode == 0, first.stderr[-3000:]
    expected = 3 * (120 + 12 * (len(LANGS) + 1))
    assert f"3 new, 0 updated, 0 unchanged runs; {expected:,} points" in first.stdout
    assert_same(client, repo, runs)
    run, series = aim_view(repo)[runs[0]]
    gpu = series[("system/gpu_util", ())]
    assert [s for s, _, _ in gpu] == list(range(12))  # 12 values logged at step 0: laid out in order
    texts = {t.name for t in run.repo.query_texts(f"run.hash == '{run.hash}'", report_mode=0)}
    assert texts == {"config/resolved.yaml"}
    images = {i.name for i in run.repo.query_images(f"run.hash == '{run.hash}'", report_mode=0)}
    assert images == {"plots/curve.png"}

    second = sync_here(capsys, "--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert "0 new, 0 updated, 3 unchanged runs; 0 points" in second.stdout

    log_points(client, runs[0], range(120, 150))  # the running run trains on, then finishes
    client.set_terminated(runs[0], "FINISHED")
    third = sync_here(capsys, "--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert f"0 new, 1 updated, 2 unchanged runs; {30 + 3 * (len(LANGS) + 1):,} points" in third.stdout
    assert_same(client, repo, runs)
    assert aim_view(repo)[runs[0]][0]["mlflow"]["status"] == "FINISHED"


@pytest.mark.heavy  # a killed process, then two more: in CI's second run
def test_a_sync_killed_midway_is_completed_by_the_next(store):
    tmp_path, uri, client, runs = store
    repo = tmp_path / "aim"
    killed = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo), fault="sync-die:*:300")
    assert killed.returncode == -signal.SIGKILL
    again = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(client, repo, runs)

    # Even with the sync's memory gone, its Aim runs are found again, not duplicated.
    os.remove(repo / "xlt_sync.json")
    lost = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert lost.returncode == 0 and "3 new" in lost.stdout
    assert_same(client, repo, runs)


def test_a_parallel_sync_writes_what_a_serial_one_writes(store):
    """Two worker processes share the runs; each journals through the sync's own process."""
    from xlt.tracking.sync import sync
    from xlt.tracking.sync_workers import workers_for

    tmp_path, uri, client, runs = store
    assert workers_for(150, cores=8) == 1 and workers_for(200, cores=2) == 2 and workers_for(1000, cores=16) == 4
    counts = sync(uri, tmp_path / "aim", progress=False, workers=2)
    assert (counts.new, counts.unchanged) == (3, 0)
    assert_same(client, tmp_path / "aim", runs)
    assert sync(uri, tmp_path / "aim", progress=False, workers=2).unchanged == 3


@pytest.mark.heavy  # real processes, each worker importing Aim: in CI's second run
def test_a_parallel_sync_with_a_killed_worker_says_so_and_the_next_completes_it(store):
    """A worker killed midway: the sync says so in one line, and the next completes it, no run duplicated."""
    tmp_path, uri, client, runs = store
    killed = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(tmp_path / "aim2"), "--workers", "2",
                      fault="sync-die:*:200")  # each worker dies after writing 200 points
    assert killed.returncode == 1 and killed.stderr.strip().splitlines()[-1].startswith(
        "xlt sync: a worker stopped (killed); what it wrote is kept"), killed.stderr[-3000:]
    again = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(tmp_path / "aim2"), "--workers", "2")
    assert again.returncode == 0, again.stderr[-3000:]
    assert_same(client, tmp_path / "aim2", runs)


def test_experiment_filter_exclusions_and_bad_input(store, capsys):
    tmp_path, uri, client, runs = store
    repo = tmp_path / "aim"
    only = sync_here(capsys, "--mlflow-tracking-uri", uri, "--aim-repo", str(repo), "--experiment", "beta",
                    "--exclude-artifacts", "plots/*")
    assert "1 new" in only.stdout
    (run, _), = aim_view(repo).values()
    assert not list(run.repo.query_images(f"run.hash == '{run.hash}'", report_mode=0))
    bad = sync_here(capsys, "--mlflow-tracking-uri", uri, "--aim-repo", str(repo), "--experiment", "gamma")
    assert bad.returncode == 2 and bad.stderr.strip() == f"xlt: error: --experiment: no experiment 'gamma' in {uri}"
    missing = sync_here(capsys, "--mlflow-tracking-uri", f"sqlite:///{tmp_path}/none.db", "--aim-repo", str(repo))
    assert missing.returncode == 2 and "--mlflow-tracking-uri: no MLflow store at" in missing.stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_watch_syncs_until_stopped_and_leaves_every_run_closed(store, stop):
    import subprocess

    tmp_path, uri, client, runs = store
    repo = tmp_path / "aim"
    watcher = subprocess.Popen([sys.executable, "-m", "xlt.cli", "sync", "--mlflow-tracking-uri", uri,
                                "--aim-repo", str(repo), "--watch", "--interval", "0.5"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert watcher.stdout.readline().startswith(f"xlt sync: watching {uri} every 0.5 s -> {repo}")
    lines = [watcher.stdout.readline()]
    assert "3 new" in lines[0]
    log_points(client, runs[0], range(120, 130))
    lines.append(watcher.stdout.readline())  # the next tick picks the new points up
    assert "0 new, 1 updated" in lines[1]
    watcher.send_signal(stop)
    out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0 and out.strip() == "xlt sync: stopped", err[-2000:]
    assert not list((repo / ".aim" / "locks").glob("*.softlock"))  # every Aim run closed
    assert_same(client, repo, runs)


def test_a_damaged_aim_repo_or_store_is_one_line_and_the_repo_rebuilds_from_mlflow(store):
    tmp_path, uri, client, runs = store
    repo = tmp_path / "aim"
    assert xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo)).returncode == 0
    table = repo / ".aim" / "run_metadata.sqlite"
    table.write_bytes(b"garbage" * 100)  # as a crash or a full disk leaves it
    damaged = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert damaged.returncode == 2 and damaged.stderr == (
        f"xlt: error: --aim-repo: {table} is not an SQLite database; move {repo} away and rerun the sync, which "
        "rebuilds it from MLflow (nothing of the runs is lost: MLflow holds them)\n")
    repo.rename(tmp_path / "aim.damaged")
    rebuilt = xlt_sync("--mlflow-tracking-uri", uri, "--aim-repo", str(repo))
    assert rebuilt.returncode == 0 and "3 new" in rebuilt.stdout
    assert_same(client, repo, runs)

    bad_store = tmp_path / "copy.db"
    bad_store.write_bytes(b"SQLite format 3\x00" + b"\xff" * 8000)  # the header, then nothing sound
    for command in (["sync", "--aim-repo", str(tmp_path / "aim2")], ["report", "--out", str(tmp_path / "r")]):
        said = xlt_cli(*command, "--mlflow-tracking-uri", f"sqlite:///{bad_store}")
        assert said.returncode == 2 and said.stderr.startswith(
            f"xlt: error: --mlflow-tracking-uri: {bad_store} is damaged (") and said.stderr.count("\n") == 1
