"""The report's tables hold each language's own numbers, in-process on a store of known runs: every
language scores differently here, so a number under the wrong language cannot pass (a tiny model's runs,
at chance in every language, could not tell)."""
import mlflow
import pandas as pd
import pytest

LANGS = ["en", "de", "fr", "es", "ar", "zh"]
SCORES = {"en": 0.81, "de": 0.72, "fr": 0.67, "es": 0.63, "ar": 0.55, "zh": 0.48}


def known_runs(uri: str) -> dict:
    """Two seeds of one configuration, each language its own accuracy (seed 2 one point higher)."""
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("known")
    runs = {}
    for seed in (1, 2):
        run = client.create_run(experiment, run_name=f"mbert-fine_tune seed={seed}").info.run_id
        for key, value in {"model": "mbert", "technique": "fine_tune", "task.name": "xnli", "train.seed": str(seed),
                           "task.labels": "entailment,neutral,contradiction", "languages": ",".join(LANGS)}.items():
            client.log_param(run, key, value)
        scores = {lang: s + (seed - 1) / 100 for lang, s in SCORES.items()}
        for lang, value in scores.items():
            client.log_metric(run, f"test/{lang}/accuracy", value)
            client.log_metric(run, f"test/{lang}/rows", 1000)
        client.log_metric(run, "test/target_mean/accuracy", sum(v for k, v in scores.items() if k != "en") / 5)
        client.set_terminated(run, "FINISHED")
        runs[run] = scores
    return runs


def test_results_csv_and_the_table_put_each_languages_number_under_that_language(tmp_path):
    from xlt.report.publish import report

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    runs = known_runs(uri)
    out = report(uri, tmp_path / "out", experiment="known")
    table = pd.read_csv(out / "results.csv")
    tested = table[(table["split"] == "test") & table["lang"].isin(LANGS)]
    assert len(tested) == 12
    for row in tested.itertuples():
        assert row.accuracy == pytest.approx(runs[row.run_id][row.lang])
    lines = (out / "report.md").read_text().splitlines()
    head, row = [[c.strip().strip("*") for c in line.strip("|").split("|")] for line in lines
                 if line.startswith(("| model ", "| mbert "))]
    cells = dict(zip(head, row))
    for lang, score in SCORES.items():
        assert cells[lang].startswith(f"{score + 0.005:.3f} ±"), (lang, cells[lang])  # the mean of the two seeds
