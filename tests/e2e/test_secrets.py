"""Credentials never reach the store, the report or the console: a token in the environment and in a tag,
a password in a URL, through a real sweep (its Hydra snapshot, its parent run's report, its summary)."""
from commands import run_xlt
from stores import mlflow_runs

TOKEN, PASSWORD = "hf_" + "Zq8" * 12, "s3cret-pw-1234"


def test_tokens_never_reach_mlflow_the_report_or_the_console(tmp_path):
    result = run_xlt("-m", "model=tiny", "data=sample", "technique=feature_extraction", "train.epochs=1",
                     f"+tracking.tags.note=token {TOKEN}", f"data.hub_id=https://ann:{PASSWORD}@example.org/xnli",
                     "tracking.aim.sync=false", f"output_dir={tmp_path}",
                     env={"HF_TOKEN": TOKEN, "MLFLOW_TRACKING_PASSWORD": PASSWORD})
    assert result.returncode == 0, result.stderr[-3000:]
    client, runs = mlflow_runs(tmp_path, "xlt", parents=True)
    assert len(runs) == 2  # the job and its sweep
    logged = [result.stdout, result.stderr, *[p.read_text() for p in tmp_path.glob("multirun/*/summary.md")]]
    for run in runs:
        logged += [*run.data.params.values(), *run.data.tags.values()]
        for folder in ("config", "hydra", "report"):  # the parent run's report quotes the command line
            for artifact in client.list_artifacts(run.info.run_id, folder):
                logged.append(open(client.download_artifacts(run.info.run_id, artifact.path), errors="ignore").read())
    assert len(logged) > 30 and any("***" in text for text in logged)
    assert not [text for text in logged if TOKEN in text or PASSWORD in text]
