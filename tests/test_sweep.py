"""End to end: the smoke sweep as a user runs it, read back from MLflow."""
import re
import sys
from statistics import mean

import pytest
import yaml

from conftest import metric_histories, mlflow_runs, run_xlt

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL_STEPS = [20, 40, 60, 76]  # 600 rows / batch 16 = 38 steps x 2 epochs; eval every 20 and at the end


CONSOLE = {}  # what the smoke sweep printed


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`python run.py -m experiment=smoke`, run from an unrelated directory."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    result = run_xlt("-m", "experiment=smoke", "output_dir=out", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    CONSOLE.update(stdout=result.stdout, stderr=result.stderr)
    return cwd / "out"


@pytest.mark.slow
def test_the_console_reads_like_a_log_file(smoke):
    out, err = CONSOLE["stdout"], CONSOLE["stderr"]
    assert err.strip() == "", err[-2000:]  # no library chatter, warnings or progress bars
    assert "\r" not in out and "\x1b" not in out  # no bar redraws or colours in a file
    lines = out.splitlines()
    assert not [line for line in lines if line.lstrip().startswith("{")]  # no raw Trainer dicts
    for job in ("#0", "#1"):
        rounds = [line for line in lines if f" {job} step " in line and " validation: target mean " in line]
        assert [line.split(" step ")[1].split()[0] for line in rounds] == [str(s) for s in EVAL_STEPS]
        assert any(f" {job} step 5/76 (7%) loss " in line for line in lines)
        assert any(f" {job} test: target mean " in line for line in lines)
    for run_log in smoke.glob("multirun/*/*/run.log"):  # each job's full log, in its directory
        text = run_log.read_text()
        assert "step 75/76" in text and "step 76 validation: target mean" in text


def history(client, run, name):
    return [(m.step, m.value) for m in client.get_metric_history(run.info.run_id, name)]


@pytest.mark.slow
def test_smoke_sweep_logs_one_finished_run_per_job(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    assert sorted(r.info.run_name for r in runs) == ["tiny-feature_extraction", "tiny-fine_tune"]
    assert all(r.info.status == "FINISHED" for r in runs)
    assert len({r.data.tags["xlt.sweep_id"] for r in runs}) == 1
    assert sorted(r.data.tags["xlt.job_num"] for r in runs) == ["0", "1"]
    for run in runs:
        p = run.data.params
        assert (p["model"], p["languages"], p["train.batch_size"], p["train.learning_rate"]) == \
            ("tiny", ",".join(LANGS), "16", "0.001")
        assert p["technique"] == run.info.run_name.split("-")[1] == p["technique.name"]
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "hydra")}
        assert artifacts == {"hydra/config.yaml", "hydra/hydra.yaml", "hydra/overrides.yaml"}
        resolved = client.download_artifacts(run.info.run_id, "config/resolved.yaml")
        assert "technique:" in open(resolved).read()
    frozen = next(r for r in runs if r.data.params["technique"] == "feature_extraction")
    assert frozen.data.params["model.trainable_params"] == str(64 * 3 + 3)  # the classifier only


@pytest.mark.slow
def test_the_sweep_ends_with_an_aim_sync(smoke):
    from aim import Repo

    _, runs = mlflow_runs(smoke, "smoke", parents=True)
    repo = Repo(str(smoke / "aim"))
    synced = {run["mlflow_run_id"]: run for run in repo.iter_runs()}
    assert sorted(synced) == sorted(r.info.run_id for r in runs) and len(runs) == 3  # two jobs and their sweep
    german = [m for m in repo.query_metrics("metric.name == 'accuracy' and metric.context.lang == 'de'",
                                            report_mode=0)]
    assert {m.context["subset"] for m in german} == {"validation", "test", "test_last"} and len(german) == 6
    jobs = {h: r for h, r in synced.items() if r["tags"].get("xlt.kind") != "sweep"}
    assert {run["params"]["technique"] for run in jobs.values()} == {"fine_tune", "feature_extraction"}
    assert all(run["params"]["train.save"] in ("none", "selected") for run in jobs.values())  # strings stay strings
    assert all("xlt.heartbeat_s" in run["tags"] for run in synced.values())


@pytest.mark.slow
def test_the_sweeps_parent_run_is_in_aim_with_its_report_and_its_jobs_by_sweep_id(smoke):
    """As aim-mlflow keeps it: its metrics, report and results as texts, charts as images, tags."""
    from aim import Repo

    repo = Repo(str(smoke / "aim"))
    (parent,) = [r.run for r in repo.query_runs("run['tags']['xlt.kind'] == 'sweep'", report_mode=0).iter_runs()]
    sweep_id = parent["tags"]["xlt.sweep_id"]
    jobs = repo.query_runs(f"run['tags']['xlt.sweep_id'] == '{sweep_id}'", report_mode=0).iter_runs()
    assert sorted(r.run.name for r in jobs if r.run.hash != parent.hash) == ["tiny-feature_extraction",
                                                                             "tiny-fine_tune"]
    metrics = {m.name: m.values.last()[1] for m in parent.metrics()}
    assert metrics["runs/finished"] == 2 and metrics["runs/failed"] == 0 and "target_mean_accuracy_best" in metrics
    texts = {t.name for t in repo.query_texts(f"run.hash == '{parent.hash}'", report_mode=0)}
    images = {i.name for i in repo.query_images(f"run.hash == '{parent.hash}'", report_mode=0)}
    assert texts == {"report/report.md", "report/results.csv"}
    assert "report/heatmap.png" in images and all(name.startswith("report/") for name in images)


@pytest.mark.slow
def test_every_language_is_evaluated_at_every_eval_step(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    for run in runs:
        for lang in LANGS + ["target_mean"]:
            assert [s for s, _ in history(client, run, f"validation/{lang}/accuracy")] == EVAL_STEPS
        for lang in LANGS:
            assert [s for s, _ in history(client, run, f"validation/{lang}/loss")] == EVAL_STEPS
        assert [s for s, _ in history(client, run, "train/loss")] == list(range(5, 76, 5))
        tests = {lang: run.data.metrics[f"test/{lang}/accuracy"] for lang in LANGS}
        assert run.data.metrics["test/target_mean/accuracy"] == pytest.approx(
            mean(v for lang, v in tests.items() if lang != "en"))
        at_20 = [v for s, v in history(client, run, "validation/target_mean/accuracy") if s == 20][0]
        firsts = {lang: history(client, run, f"validation/{lang}/accuracy")[0][1] for lang in LANGS[1:]}
        assert at_20 == pytest.approx(mean(firsts.values()))


@pytest.mark.slow
def test_the_selected_step_has_the_best_english_validation_accuracy(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    for run in runs:
        m = run.data.metrics
        english = history(client, run, "validation/en/accuracy")
        best = max(v for _, v in english)
        assert m["test/selected_step"] == next(s for s, v in english if v == best)  # the earliest best round
        for lang in LANGS + ["target_mean"]:
            assert f"test_last/{lang}/accuracy" in m
            if m["test/selected_step"] == EVAL_STEPS[-1]:  # the last weights: the same numbers
                assert m[f"test/{lang}/accuracy"] == m[f"test_last/{lang}/accuracy"]


@pytest.mark.slow
def test_same_config_gives_the_same_metrics(smoke):
    result = run_xlt("experiment=smoke", "technique=fine_tune", "tracking.experiment=again",
                     f"output_dir={smoke}")
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = mlflow_runs(smoke, "smoke")
    _, (again,) = mlflow_runs(smoke, "again")
    first = next(r for r in runs if r.data.params["technique"] == "fine_tune")
    for name in ("train/loss", "validation/de/loss", "test/zh/loss"):
        assert history(client, again, name) == history(client, first, name)
    assert (smoke / "cache" / "tokenized").is_dir()


@pytest.mark.heavy  # in CI's second run: the default run stays under 10 minutes
@pytest.mark.slow
def test_four_parallel_jobs_get_a_gpu_each_and_lose_no_point(tmp_path):
    # Four "GPUs" on a CPU machine: torch sees none, but each job must be handed its own.
    result = run_xlt("-m", "experiment=smoke", "train.seed=1,2", "hydra.launcher.n_jobs=4", f"output_dir={tmp_path}",
                     env={"CUDA_VISIBLE_DEVICES": "0,1,2,3"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "database is locked" not in result.stdout + result.stderr
    client, runs = mlflow_runs(tmp_path, "smoke")
    assert len(runs) == 4 and all(r.info.status == "FINISHED" for r in runs)
    assert sorted(r.data.tags["xlt.cuda_visible_devices"] for r in runs) == ["0", "1", "2", "3"]
    for run in runs:
        metrics = metric_histories(client, run)
        assert [s for s, _ in metrics["train/loss"]] == list(range(5, 76, 5))
        for lang in LANGS + ["target_mean"]:
            assert [s for s, _ in metrics[f"validation/{lang}/accuracy"]] == EVAL_STEPS
            assert [s for s, _ in metrics[f"test/{lang}/accuracy"]] == [76]
        points = sum(len(h) for h in metrics.values())
        # train loss/grad_norm/lr/epoch x 15, end-of-training epoch and flos, 4 evaluations of
        # accuracy (6 languages + mean) and loss (6), two test rounds of the same (test and
        # test_last), the selected step, and the rows read (train, and its one language; validation and
        # test x 6 languages).
        assert points == 15 * 4 + 2 + 4 * (7 + 6) + 2 * (7 + 6) + 1 + (2 + 2 * 6)
    assert len({str(p) for p in tmp_path.glob("multirun/*/*_tiny_*/")}) == 4  # a directory per job


def test_gpus_are_dealt_one_per_job(monkeypatch, caplog):
    from xlt.sweep.launcher import Launcher

    caplog.set_level("INFO")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,6")
    assert Launcher(n_jobs=2)._gpus() == ["4", "6"]
    assert Launcher(n_jobs=3)._gpus() == ["4", "6", "4"] and "some jobs share a GPU" in caplog.text
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert Launcher(n_jobs=2)._gpus() == [None, None] and "No GPU visible" in caplog.text


def xlt_cli(*args, cwd):
    return run_xlt(*args, cwd=cwd, command=[sys.executable, "-m", "xlt.cli"])


@pytest.mark.slow
def test_a_run_records_what_reproducing_it_needs(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    run = runs[0]
    env = yaml.safe_load(open(client.download_artifacts(run.info.run_id, "config/environment.yaml")))
    assert env["seed"] == 42 and len(env["git_commit"]) == 40 and env["git_dirty"] in ("True", "False")
    assert env["packages"]["torch"].startswith("2.") and env["packages"]["mlflow"][0].isdigit()
    assert env["packages"]["huggingface_hub"][0].isdigit() and set(env["loaded"]) == {"model", "data"}
    job_dir = run.data.tags["xlt.job_dir"]
    assert yaml.safe_load(open(f"{job_dir}/environment.yaml")) == env
    assert len(run.data.tags["xlt.config_hash"]) == 16


@pytest.mark.slow
def test_reproduce_by_run_id_gives_the_same_metrics(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    original = next(r for r in runs if r.data.params["technique"] == "fine_tune")
    result = xlt_cli("reproduce", original.info.run_id, "--mlflow-tracking-uri", f"sqlite:///{smoke}/mlflow.db",
                     "tracking.experiment=reproduced", cwd=smoke.parent)  # overrides may follow options
    assert result.returncode == 0, result.stderr[-3000:]
    _, (copy,) = mlflow_runs(smoke, "reproduced")
    assert copy.data.tags["xlt.reproduced_from"] == original.info.run_id
    assert copy.data.tags["xlt.config_hash"] == original.data.tags["xlt.config_hash"]
    assert metric_histories(client, copy) == metric_histories(client, original)
    # Issue 26: the original's name, marked; the new run's id; the sweep's log format, no download bars.
    assert copy.info.run_name == f"{original.info.run_name} (reproduced)"
    assert f"xlt reproduce: run {copy.info.run_id} reproduces {original.info.run_id}" in result.stdout
    assert "Downloading" not in result.stdout + result.stderr and "[INFO]" not in result.stdout
    assert re.search(r"^\d\d:\d\d:\d\d pooling: cls ", result.stdout, re.M)


@pytest.mark.slow
def test_reproduce_a_job_directory_with_an_override_and_hydras_own_way(smoke):
    client, runs = mlflow_runs(smoke, "smoke")
    original = next(r for r in runs if r.data.params["technique"] == "feature_extraction")
    job_dir = original.data.tags["xlt.job_dir"]
    result = xlt_cli("reproduce", job_dir, "train.epochs=1", "tracking.experiment=one_epoch", cwd=smoke.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    _, (shorter,) = mlflow_runs(smoke, "one_epoch")
    assert shorter.data.tags["xlt.reproduced_from"] == job_dir and shorter.data.params["train.epochs"] == "1.0"
    assert shorter.info.run_name == f"{original.info.run_name} (reproduced with epochs=1)"
    assert [s for s, _ in metric_histories(client, shorter)["train/loss"]][-1] == 35

    hydra_way = run_xlt("--config-path", f"{job_dir}/.hydra", "--config-name", "config",
                        "tracking.experiment=hydra_way", cwd=smoke.parent)
    assert hydra_way.returncode == 0, hydra_way.stderr[-3000:]
    _, (same,) = mlflow_runs(smoke, "hydra_way")
    assert metric_histories(client, same) == metric_histories(client, original)


def test_reproduce_notes_a_changed_environment(tmp_path):
    from xlt.cli.reproduce import _environment_notice
    from xlt.config import XltConfig
    from xlt.tracking.environment import environment

    env = environment(XltConfig(), {"model": None, "data": None})
    (tmp_path / "same.yaml").write_text(yaml.safe_dump(env))
    assert _environment_notice(tmp_path / "same.yaml") is None
    env["packages"]["torch"] = "1.0.0"
    (tmp_path / "old.yaml").write_text(yaml.safe_dump(env))
    notice = _environment_notice(tmp_path / "old.yaml")
    assert notice.startswith("xlt: note: not the snapshot's environment: torch 1.0.0 -> 2.")


@pytest.mark.parametrize("target, error", [
    ("0123abcd" * 4, "RUN_ID: no MLflow store at sqlite:///{tmp}/mlflow.db"),
    ("1c84c2", "RUN_ID: '1c84c2' is not a full MLflow run id (32 hex characters"),
    ("logs/multirun/2026-01-01_00-00-00/0_tiny_fine_tune", "JOB_DIR: 'logs/multirun/2026-01-01_00-00-00/"
                                                          "0_tiny_fine_tune' is not a directory"),
    ("{tmp}", "JOB_DIR: '{tmp}' has no .hydra/config.yaml"),
])
def test_reproduce_names_what_is_missing(tmp_path, target, error):
    target, error = target.format(tmp=tmp_path), error.format(tmp=tmp_path)
    result = xlt_cli("reproduce", target, "--mlflow-tracking-uri", f"sqlite:///{tmp_path}/mlflow.db", cwd=tmp_path)
    assert result.returncode == 2 and result.stderr.startswith(f"xlt: error: {error}"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "mlflow.db").exists()


def test_a_corrupt_jsonl_line_stops_the_command_before_any_run(tmp_path):
    import shutil

    from xlt.config import SAMPLE_DIR

    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    with open(data / "validation.de.jsonl", "a") as f:
        f.write('{"premise": "kaputt"\n')  # line 101
    result = run_xlt("-m", "model=tiny", "technique=fine_tune,feature_extraction", "data=jsonl", f"data.dir={data}",
                     f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith(f"xlt: error: data.dir: {data / 'validation.de.jsonl'}:101 is not valid JSON (")
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_job_failing_at_run_time_ends_its_run_failed(tmp_path):
    result = run_xlt("experiment=smoke", "technique=feature_extraction", "tracking.experiment=broken",
                     f"output_dir={tmp_path / 'out'}", fault="raise:*")
    assert result.returncode != 0
    _, (run,) = mlflow_runs(tmp_path / "out", "broken")
    assert run.info.status == "FAILED" and "injected failure" in run.data.tags["xlt.error"]


@pytest.mark.slow
def test_a_rerun_that_skips_every_job_changes_nothing_in_aim(smoke):
    """Last in this file: it reruns the smoke sweep into the same store."""
    result = run_xlt("-m", "experiment=smoke", "output_dir=out", cwd=smoke.parent)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("Skipping #") == 2
    # The jobs and the first sweep's parent run are unchanged; the rerun's own parent run (its report) is new.
    assert "xlt sync: 1 new, 0 updated, 3 unchanged runs" in result.stdout
    # The overrides every job shares are said once; each row holds the job's own.
    table = result.stdout[result.stdout.index("Every job: experiment=smoke output_dir=out"):]
    assert table.count("experiment=smoke") == 1
    assert re.search(r"^\| #1  \| technique=feature_extraction +\| SKIPPED ", table, re.M)
