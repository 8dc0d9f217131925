"""End to end: the smoke sweep as a user runs it, read back from MLflow."""
from statistics import mean

import pytest

from conftest import mlflow_runs, run_xlt

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL_STEPS = [20, 40, 60, 76]  # 600 rows / batch 16 = 38 steps x 2 epochs; eval every 20 and at the end


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    """`python run.py -m experiment=smoke`, run from an unrelated directory."""
    cwd = tmp_path_factory.mktemp("elsewhere")
    result = run_xlt("-m", "experiment=smoke", "output_dir=out", cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return cwd / "out"


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


@pytest.mark.slow
def test_parallel_jobs_share_one_store_without_losing_points(tmp_path):
    result = run_xlt("-m", "experiment=smoke", "hydra.launcher.n_jobs=2", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = mlflow_runs(tmp_path, "smoke")
    assert len(runs) == 2 and all(r.info.status == "FINISHED" for r in runs)
    for run in runs:
        assert len(history(client, run, "train/loss")) == 15
        assert all(len(history(client, run, f"validation/{lang}/accuracy")) == 4 for lang in LANGS)
    assert len({str(p) for p in tmp_path.glob("multirun/*/*/")}) == 2  # a directory per job


@pytest.mark.slow
def test_a_job_failing_at_run_time_ends_its_run_failed(tmp_path):
    import shutil

    from xlt.config import SAMPLE_DIR

    data = tmp_path / "data"
    shutil.copytree(SAMPLE_DIR, data)
    with open(data / "validation.de.jsonl", "a") as f:
        f.write('{"premise": "kaputt"\n')  # line 101: passes the pre-check, fails when read
    result = run_xlt("model=tiny", "data=jsonl", f"data.dir={data}", "tracking.experiment=broken",
                     f"output_dir={tmp_path / 'out'}")
    assert result.returncode == 2
    assert f"xlt: error: data.dir: {data / 'validation.de.jsonl'}:101 is not valid JSON" in result.stderr
    _, (run,) = mlflow_runs(tmp_path / "out", "broken")
    assert run.info.status == "FAILED" and "validation.de.jsonl:101" in run.data.tags["xlt.error"]
