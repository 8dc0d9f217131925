"""The sweep layer: GPUs dealt to parallel jobs, reproduce's checks, and a bad row stopping a sweep before any
job. The smoke sweep as a user runs it, read back by every assertion: tests/e2e/test_smoke_sweep.py."""

import pytest
import yaml

from commands import run_xlt, xlt_cli
from stores import metric_histories, mlflow_runs

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
EVAL_STEPS = [20, 40, 60, 76]  # 600 rows / batch 16 = 38 steps x 2 epochs; eval every 20 and at the end


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


def test_reproducing_a_run_logged_with_a_masked_credential_asks_for_it_again(tmp_path, monkeypatch, capsys):
    import subprocess

    from omegaconf import OmegaConf

    from xlt.cli.main import main

    from jobs import composed_job

    snapshot = tmp_path / "job" / ".hydra"
    snapshot.mkdir(parents=True)
    config = composed_job(tmp_path / "out", "model=tiny", "data.hub_id=https://ann:***@example.org/xnli")
    OmegaConf.save(config, snapshot / "config.yaml")  # as the run's hydra/ artifact keeps it
    started = []
    monkeypatch.setattr(subprocess, "call", lambda command, env: started.append(command) or 0)
    assert main(["reproduce", str(tmp_path / "job")]) == 2 and not started
    assert capsys.readouterr().err == (
        "xlt: error: data.hub_id: the snapshot holds it masked (https://ann:***@example.org/xnli), as every "
        f"credential is logged; give it again: xlt reproduce {tmp_path / 'job'} data.hub_id=...\n")
    url = "data.hub_id=https://ann:pw@example.org/xnli"
    assert main(["reproduce", str(tmp_path / "job"), url]) == 0 and started[0][-1] == url


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


