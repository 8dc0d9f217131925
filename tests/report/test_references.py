"""Published references (issue 24): every number carries its source, and the report sets matching
runs beside them per language, saying when the budgets differ."""
from typing import Optional

import mlflow

from xlt.report.references import references


def test_every_reference_carries_its_source():
    table = references()
    assert len(table) >= 74 and table["source"].str.len().gt(20).all()
    assert table["value"].between(20, 100).all()
    assert not table.duplicated(["task", "protocol", "model", "lang", "metric"]).any()
    # The figures, from the XLM-R paper's Table 1.
    xnli = table[table["task"] == "xnli"]
    xlmr = xnli[xnli["model"] == "FacebookAI/xlm-roberta-base"].set_index("lang")["value"]
    assert xlmr[["en", "de", "fr", "es", "ar", "zh"]].tolist() == [85.8, 78.7, 79.7, 80.7, 73.8, 76.7]
    mbert = xnli[xnli["model"] == "google-bert/bert-base-multilingual-cased"].set_index("lang")["value"]
    assert mbert[["en", "de", "fr", "es", "ar", "zh"]].tolist() == [82.1, 71.1, 73.8, 74.3, 64.9, 69.3]


def test_qa_references_give_f1_and_exact_match_for_every_language_of_the_task():
    """XQuAD (mBERT) and MLQA (mBERT, XLM-R base): both metrics, each task language, nothing else;
    F1 above exact match, as it always is."""
    from xlt.config.files import task_preset

    table = references()
    for task, models in (("xquad", 1), ("mlqa", 2)):
        rows = table[table["task"] == task]
        assert rows["model"].nunique() == models and set(rows["metric"]) == {"f1", "exact_match"}
        assert set(rows["lang"]) == set(task_preset(task).languages)
        wide = rows.pivot_table(index=["model", "lang"], columns="metric", values="value")
        assert len(wide) == models * len(task_preset(task).languages) and (wide["f1"] > wide["exact_match"]).all()
    mlqa_hi = table[(table["task"] == "mlqa") & (table["lang"] == "hi")].set_index(["model", "metric"])["value"]
    assert mlqa_hi[("FacebookAI/xlm-roberta-base", "f1")] == 59.4  # the XLM-R paper's Table 3


def references_section(tmp_path, params: dict, metrics: dict, tags: Optional[dict] = None, files=()) -> str:
    """The "Published references" section of the report on one finished run of these params, metrics
    and tags (`files`: references of one's own)."""
    from xlt.report.publish import report

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(uri)
    run = client.create_run(client.create_experiment("refs"), run_name="one").info.run_id
    for key, value in params.items():
        client.log_param(run, key, value)
    for key, value in metrics.items():
        client.log_metric(run, key, value)
    for key, value in (tags or {}).items():
        client.set_tag(run, key, value)
    client.set_terminated(run, "FINISHED")
    markdown = (report(uri, tmp_path / "out", experiment="refs", references=files) / "report.md").read_text()
    return markdown.split("## Published references", 1)[1]


def test_the_report_sets_a_matching_run_beside_its_reference(tmp_path):
    params = {"model": "mbert", "technique": "fine_tune", "model.path": "google-bert/bert-base-multilingual-cased",
              "task.name": "xnli", "task.labels": "entailment,neutral,contradiction", "train.epochs": "2",
              "train.seed": "1", "languages": "en,de"}
    section = references_section(tmp_path, params, {"test/en/accuracy": 0.80, "test/de/accuracy": 0.65,
                                                    "test/target_mean/accuracy": 0.65, "train/rows": 15000})
    source = "Conneau et al. 2020, Unsupervised Cross-lingual Representation Learning at Scale (XLM-R), Table 1"
    assert f"| mbert | fine_tune | en | accuracy | 82.1 | 80.0 | -2.1 | {source} |" in section
    assert f"| mbert | fine_tune | de | accuracy | 71.1 | 65.0 | -6.1 | {source} |" in section
    assert "| mbert | fine_tune | fr | accuracy | 73.8 | - | - |" in section  # a language the runs did not test
    assert ("mbert fine_tune: 1 runs trained on 15,000 rows x 2 epochs; the reference fine-tuned on 392,702 rows "
            "(the full English training set): the budgets differ, and so may the numbers.") in section


def test_a_qa_run_is_set_beside_both_of_its_references(tmp_path):
    params = {"model": "xlmr", "technique": "lora", "model.path": "FacebookAI/xlm-roberta-base",
              "task.name": "mlqa", "task.labels": "start,end", "task.metric": "f1", "train.epochs": "2",
              "train.seed": "1", "languages": "en,hi"}
    metrics = {"test/en/f1": 0.75, "test/en/exact_match": 0.6, "test/hi/f1": 0.5, "test/hi/exact_match": 0.35,
               "test/target_mean/f1": 0.5, "train/rows": 87599}
    section = references_section(tmp_path, params, metrics, {"xlt.metric": "f1"})
    assert "| xlmr | lora | hi | f1 | 59.4 | 50.0 | -9.4 | Conneau et al. 2020" in section
    assert "| xlmr | lora | hi | exact_match | 42.9 | 35.0 | -7.9 | Conneau et al. 2020" in section
    assert "| xlmr | lora | zh | f1 | 61.8 | - | - |" in section
    # The full training set, so no budget warning; the technique differs, and the note says so.
    assert ("xlmr lora: 1 runs trained on 87,599 rows x 2 epochs; the reference fine-tuned on 87,599 rows (the full "
            "English training set); the reference fine-tunes every weight, these runs use lora.") in section


PANX_PARAMS = {"model": "mbert", "technique": "fine_tune", "model.path": "google-bert/bert-base-multilingual-cased",
               "task.name": "panx", "task.labels": "O,B-PER,I-PER", "task.metric": "f1", "train.epochs": "3",
               "train.seed": "1", "languages": "en,de"}
OWN = """task,protocol,model,lang,metric,value,source
panx,zero_shot,google-bert/bert-base-multilingual-cased,de,f1,78.0,"Our lab's mBERT runs, 2026 (5 seeds)"
panx,zero_shot,google-bert/bert-base-multilingual-cased,ar,f1,41.0,"Our lab's mBERT runs, 2026 (5 seeds)"
"""


def test_references_of_ones_own_are_set_beside_matching_runs(tmp_path):
    """A task xlt ships no references for (PAN-X): a researcher's file of them, in the shipped columns."""
    own = tmp_path / "mine.csv"
    own.write_text(OWN)
    metrics = {"test/en/f1": 0.83, "test/de/f1": 0.7, "test/target_mean/f1": 0.7, "train/rows": 20000}
    section = references_section(tmp_path, PANX_PARAMS, metrics, {"xlt.metric": "f1"}, files=[own])
    assert "| mbert | fine_tune | de | f1 | 78.0 | 70.0 | -8.0 | Our lab's mBERT runs, 2026 (5 seeds) |" in section
    assert "| mbert | fine_tune | ar | f1 | 41.0 | - | - |" in section
    assert "the reference's source does not state its training rows" in section
    assert len(references([own, own])) == len(references()) + 2  # a row given twice is set out once


def test_a_bad_references_file_is_one_line_naming_file_line_and_fix_before_the_store_is_read(tmp_path, capsys):
    from xlt.cli.main import main

    store = tmp_path / "mlflow.db"
    mlflow.MlflowClient(f"sqlite:///{store}").create_experiment("refs")
    capsys.readouterr()  # MLflow's lines as it made the store
    cases = {"no_source.csv": (OWN.replace(",source", ",where").replace(',"Our', ',"Ours'),
                               "no_source.csv has no column 'source'; a references file needs the columns "
                               "task,protocol,model,lang,metric,value,source"),
             "word.csv": (OWN.replace(",41.0,", ",n/a,"), "word.csv:3: value needs a number in points (e.g. 71.1)"),
             "fraction.csv": (OWN.replace(",41.0,", ",0.41,"), "fraction.csv:3: value 0.41 is not in points"),
             "unsourced.csv": (OWN.replace(',"Our lab\'s mBERT runs, 2026 (5 seeds)"\npanx', ',\npanx'),
                               "unsourced.csv:2: source needs a value")}
    for name, (text, said) in cases.items():
        (tmp_path / name).write_text(text)
        code = main(["report", "--mlflow-tracking-uri", str(store), "--experiment", "nothing-here",
                     "--out", str(tmp_path / "out"), "--references", str(tmp_path / name)])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.startswith("xlt: error: --references: ") and said in err, err
        assert len(err.splitlines()) == 1
    assert not (tmp_path / "out").exists()
