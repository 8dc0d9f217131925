"""Published references (issue 24): every number carries its source, and the report sets matching
runs beside them per language, saying when the budgets differ."""
import mlflow

from xlt.report.references import references


def test_every_reference_carries_its_source():
    table = references()
    assert len(table) >= 24 and table["source"].str.len().gt(20).all()
    assert table["value"].between(30, 100).all()
    # The figures, from the XLM-R paper's Table 1.
    xlmr = table[table["model"] == "FacebookAI/xlm-roberta-base"].set_index("lang")["value"]
    assert xlmr[["en", "de", "fr", "es", "ar", "zh"]].tolist() == [85.8, 78.7, 79.7, 80.7, 73.8, 76.7]
    mbert = table[table["model"] == "google-bert/bert-base-multilingual-cased"].set_index("lang")["value"]
    assert mbert[["en", "de", "fr", "es", "ar", "zh"]].tolist() == [82.1, 71.1, 73.8, 74.3, 64.9, 69.3]


def test_the_report_sets_a_matching_run_beside_its_reference(tmp_path):
    from xlt.report.publish import report

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    experiment = client.create_experiment("refs")
    run = client.create_run(experiment, run_name="mbert-fine_tune").info.run_id
    params = {"model": "mbert", "technique": "fine_tune", "model.path": "google-bert/bert-base-multilingual-cased",
              "task.name": "xnli", "task.labels": "entailment,neutral,contradiction", "train.epochs": "2",
              "train.seed": "1", "languages": "en,de"}
    for key, value in params.items():
        client.log_param(run, key, value)
    for key, value in {"test/en/accuracy": 0.80, "test/de/accuracy": 0.65, "test/target_mean/accuracy": 0.65,
                       "train/rows": 15000}.items():
        client.log_metric(run, key, value)
    client.set_terminated(run, "FINISHED")
    markdown = (report(uri, tmp_path / "out", experiment="refs") / "report.md").read_text()
    section = markdown.split("## Published references", 1)[1]
    source = "Conneau et al. 2020, Unsupervised Cross-lingual Representation Learning at Scale (XLM-R), Table 1"
    assert f"| mbert | fine_tune | en | 82.1 | 80.0 | -2.1 | {source} |" in section
    assert f"| mbert | fine_tune | de | 71.1 | 65.0 | -6.1 | {source} |" in section
    assert "| mbert | fine_tune | fr | 73.8 | - | - |" in section  # a language the runs did not test
    assert ("mbert fine_tune: 1 runs trained on 15,000 rows x 2 epochs; the reference fine-tuned on 392,702 rows "
            "(the full English training set): the budgets differ, and so may the numbers.") in section
