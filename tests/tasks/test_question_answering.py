"""Extractive question answering (issue 35): windows and their targets, the span search, bad input in one
line, XQuAD/MLQA jobs in-process on the tiny model (every technique) through JSONL and a stand-in of
google/xtreme in its real layout, and the report's tables and significance on exact match and F1."""
import dataclasses
import json

import mlflow
import numpy as np
import pytest
from tasks.qa_data import LANGS, QA_TINY

from xlt.cli.precheck import check
from xlt.config import task_preset
from xlt.data.splits import data_pin
from xlt.model.loading import build_tiny_tokenizer
from xlt.protocols import splits_read, validate_job
from xlt.tasks import question_answering as qa
from xlt.tasks._answers import exact_and_f1, tokenizer_for
from xlt.tracking.predictions import load_predictions

from jobs import composed_job, run_job

XQUAD = task_preset("xquad")
CONTEXT = ("Anna lives in Berlin . Marco works in Madrid and visits Paris in the spring . Lena reads a book "
           "about Cairo while Omar travels to Tokyo with friends .")


def encoded(contexts, answers, max_length=24, stride=8):
    task = dataclasses.replace(XQUAD, doc_stride=stride)
    tokenizer = build_tiny_tokenizer(2000)
    rows = {"id": [str(i) for i in range(len(contexts))], "question": ["Where does Omar travel?"] * len(contexts),
            "context": contexts, "answers": answers, "row": list(range(len(contexts))), "lang": ["en"] * len(contexts)}
    return qa.encode(rows, tokenizer, task, max_length)


def answer(text, context=CONTEXT):
    return {"text": [text], "answer_start": [context.index(text)]}


def test_a_long_context_becomes_overlapping_windows_and_the_answer_is_targeted_where_wholly_inside():
    enc = encoded([CONTEXT], [answer("Tokyo")])
    windows = len(enc["input_ids"])
    assert windows > 2 and enc["first"] == [True] + [False] * (windows - 1) and set(enc["row"]) == {0}
    targeted = [i for i in range(windows) if enc["start_positions"][i] != 0]
    assert targeted  # the windows that hold "Tokyo" point at it; the others at the first token
    for i in range(windows):
        start, end = enc["start_positions"][i], enc["end_positions"][i]
        if i in targeted:
            chars = enc["offsets"][i]
            assert CONTEXT[chars[start][0]:chars[end][1]] == "Tokyo"
        else:
            assert (start, end) == (0, 0)
    # Consecutive windows share context tokens (the stride): no answer can fall between two windows.
    firsts = [next(o[0] for o in w if o[0] != qa.OUTSIDE) for w in enc["offsets"]]
    lasts = [max(o[1] for o in w) for w in enc["offsets"]]
    assert all(firsts[i + 1] < lasts[i] for i in range(windows - 1)) and lasts[-1] == len(CONTEXT)


def test_the_span_search_maps_the_best_span_inside_the_context_back_to_its_characters():
    enc = encoded([CONTEXT], [answer("Madrid and visits Paris")], max_length=64, stride=16)
    window = np.asarray(enc["offsets"][0])
    logits = np.zeros((1, len(window), 2), dtype=np.float32)
    start, end = enc["start_positions"][0], enc["end_positions"][0]
    logits[0, start, 0], logits[0, end, 1] = 5, 5
    logits[0, 1, 0], logits[0, 2, 1] = 9, 9  # the question's tokens score higher: never an answer
    features = _features(enc)
    assert qa.answers(logits, features, XQUAD) == {0: (CONTEXT.index("Madrid"), CONTEXT.index("Paris") + 5)}
    short = dataclasses.replace(XQUAD, max_answer_length=2)  # the gold span is 4 tokens: too long now
    found = qa.answers(logits, features, short)[0]
    assert found != (CONTEXT.index("Madrid"), CONTEXT.index("Paris") + 5)
    assert qa.metrics(logits, None, XQUAD, features) == {"f1": 1.0, "exact_match": 1.0}


def _features(enc):
    import datasets

    return datasets.Dataset.from_dict({k: enc[k] for k in ("row", "offsets", "first", "context", "gold", "lang")})


@pytest.mark.parametrize("row, problem", [
    ({"id": "1", "question": "q?", "context": "Anna lives in Berlin.", "answers": {"text": ["Berlin"],
                                                                                  "answer_start": [3]}},
     "has answer_start 3, which does not point at its answer 'Berlin' (the text is at 14)"),
    ({"id": "1", "question": "q?", "context": " ", "answers": {"text": [], "answer_start": []}},
     "has an empty context; every row needs the passage its answer is in"),
    ({"id": "1", "question": "", "context": "Anna lives in Berlin.", "answers": {"text": [], "answer_start": []}},
     "has no question; every row needs one"),
    ({"id": "1", "context": "Anna lives in Berlin.", "answers": {"text": [], "answer_start": []}},
     "needs the keys id, question, context, answers of task=xquad (it has id, context, answers: another task's "
     "data?)"),
])
def test_a_bad_qa_row_is_one_line_naming_its_file_and_line(tmp_path, qa_dir, row, problem):
    for name in ("train.en", "validation.en", "test.en", "test.de"):
        (tmp_path / f"{name}.jsonl").write_text((qa_dir / f"{name}.jsonl").read_text())
    with open(tmp_path / "test.de.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    line = len((tmp_path / "test.de.jsonl").read_text().splitlines())
    assert check(["task=xquad", "model=tiny", "data=jsonl", f"data.dir={tmp_path}", "languages.eval=[en,de]",
                  f"output_dir={tmp_path}/o"]) == f"data.dir: {tmp_path / 'test.de.jsonl'}:{line} {problem}"
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("overrides, line", [
    (["task.doc_stride=128", "train.max_length=128"],
     "task.doc_stride: 128 is not below train.max_length=128: windows would not move; use e.g. task.doc_stride=42"),
    (["task.answer_normalisation=mlqa"],
     "task.answer_normalisation: mlqa normalises en, es, de, ar, hi, vi, zh only, not el, ru, th, tr; use squad"),
    (["task.doc_stide=64"], "task.doc_stide: Key 'doc_stide' not in 'Options'; did you mean task.doc_stride?"),
    (["task=xnli", "task.doc_stride=64"], "task.doc_stride: Key 'doc_stride' not in 'TaskConfig'; it is an option of "
                                          "task.kind=question_answering: choose it, or leave task.doc_stride out"),
    (["protocol=few_shot", "protocol.shots=4", "data=xnli", "data.hub_id=/nowhere"],
     "protocol: task=xquad's hub repo has train rows in en only (SQuAD/train), and protocol few_shot reads de train "
     "rows; use data=jsonl data.dir=DIR with train.de.jsonl"),
    (["data=xnli", "data.hub_id=/nowhere", "task.hub_splits.validation='SQuAD/validation[-10]'"],
     "task.hub_splits: validation: 'SQuAD/validation[-10]' ends in no slice datasets reads; write e.g. "
     "tydiqa/train[-10%:] or tydiqa/train[:500]"),
    (["train.select=target_dev"], "train.select: target_dev selects on de validation, but task=xquad has validation "
                                  "rows in en only; use train.select=en_dev or last"),
])
def test_what_a_qa_task_cannot_do_is_one_line(qa_dir, overrides, line):
    data = [] if "data=xnli" in overrides else ["data=jsonl", f"data.dir={qa_dir}"]
    assert check(["task=xquad", "model=tiny", *data, "languages.eval=[en,de]", *overrides]) == line


def test_qa_jobs_log_exact_match_and_f1_per_language_recomputable_from_their_predictions(qa_runs, qa_dir):
    out, results = qa_runs
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    for result in results.values():
        run = client.get_run(result["run_id"])
        assert run.data.tags["xlt.metric"] == "f1" and result["metric"] == "f1"
        for lang in LANGS:
            assert f"test/{lang}/exact_match" in run.data.metrics and f"test/{lang}/f1" in run.data.metrics
        assert "validation/en/f1" in run.data.metrics and "validation/de/f1" not in run.data.metrics  # SQuAD's dev only
        assert result["target_score"] == run.data.metrics["test/target_mean/f1"]
        assert run.data.metrics["test/de/rows"] == 30 and run.data.metrics["test/de/split_rows"] > 0  # windows
    # Each question's predicted span, read back from the predictions file, scores what the run logged.
    uri, run_id = f"sqlite:///{out / 'mlflow.db'}", results["fine_tune"]["run_id"]
    predictions = load_predictions(uri, run_id)
    for lang in ("en", "zh"):
        rows = [json.loads(line) for line in open(qa_dir / f"test.{lang}.jsonl")]
        mine = predictions[(predictions["lang"] == lang) & (predictions["weights"] == "selected")].set_index("row")
        scored = [exact_and_f1(rows[r]["context"][p.pred_start:p.pred_end], rows[r]["answers"]["text"],
                               tokenizer_for("squad", lang)) for r, p in mine.iterrows()]
        metrics = client.get_run(run_id).data.metrics
        assert len(scored) == 30 and metrics[f"test/{lang}/f1"] == pytest.approx(np.mean([s[1] for s in scored]))
        assert metrics[f"test/{lang}/exact_match"] == pytest.approx(np.mean([s[0] for s in scored]))


def test_a_frozen_encoder_with_a_span_head_runs_on_mlqa_and_logs_its_metrics(tmp_path, qa_dir):
    """Feature extraction on QA: a frozen encoder, a span head (fine-tuning and LoRA: qa_runs)."""
    result = run_job(tmp_path, "task=mlqa", "data=jsonl", f"data.dir={qa_dir}", "technique=feature_extraction",
                     *QA_TINY, "train.epochs=1")
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result["run_id"])
    assert "validation/zh/f1" in run.data.metrics and "test/zh/exact_match" in run.data.metrics  # MLQA has its dev


def _rows(qa_dir, name):
    return [json.loads(line) for line in open(qa_dir / f"{name}.jsonl")]


def _xtreme_copy(repo, parts, card=None):
    """A copy of google/xtreme's layout: each part's rows (`{"SQuAD/train": rows}`) in
    `<part>-00000-of-00001.parquet`, and the card, if given, as README.md."""
    import datasets

    for part, rows in parts.items():
        path = repo / f"{part}-00000-of-00001.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_list(rows).to_parquet(str(path))
    if card:
        (repo / "README.md").write_text(card)
    return repo


def test_xquad_from_a_copy_of_google_xtreme_reads_only_the_languages_asked(tmp_path, qa_dir):
    """google/xtreme's layout: SQuAD/{train,validation}-*.parquet and XQuAD.<lang>/validation-*.parquet."""
    parts = {"SQuAD/train": "train.en", "SQuAD/validation": "validation.en",
             **{f"XQuAD.{lang}/validation": f"test.{lang}" for lang in ("en", "de", "zh")}}
    repo = _xtreme_copy(tmp_path / "xtreme", {part: _rows(qa_dir, name) for part, name in parts.items()})
    job = validate_job(composed_job(tmp_path / "p", "task=xquad", "data=xnli", f"data.hub_id={repo}",
                                    "languages.eval=[en,de]", "model=tiny"))
    assert sorted(data_pin(job).files) == ["SQuAD/train", "SQuAD/validation", "XQuAD.de/validation",
                                           "XQuAD.en/validation"]
    result = run_job(tmp_path / "o", "task=xquad", "data=xnli", f"data.hub_id={repo}", *QA_TINY,
                     "languages.eval=[en,de]", "train.epochs=1")
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'o' / 'mlflow.db'}").get_run(result["run_id"])
    assert run.data.metrics["test/de/rows"] == 30 and "test/zh/f1" not in run.data.metrics


TYDIQA_CARD = """---
configs:
- config_name: tydiqa
  data_files:
  - split: train
    path: tydiqa/train-*
  - split: validation
    path: tydiqa/validation-*
---
"""


def _tydiqa_copy(repo, qa_dir):
    """google/xtreme's tydiqa config: every language in one file per split, a row's language the
    first word of its id (`english-3-0`); Chinese rows stand in for Korean (a language not asked)."""
    def rows(name, language):
        return [{**row, "id": f"{language}-{i}-0"} for i, row in enumerate(_rows(qa_dir, name))]

    parts = {"tydiqa/train": rows("train.en", "english") + rows("test.ar", "arabic") + rows("test.zh", "korean"),
             "tydiqa/validation": rows("test.en", "english") + rows("test.ar", "arabic") + rows("test.zh", "korean")}
    return _xtreme_copy(repo, {part: sorted(rows, key=lambda row: row["question"]) for part, rows in parts.items()},
                        TYDIQA_CARD)


def test_tydiqa_from_a_copy_of_google_xtreme_reads_each_language_by_its_ids(tmp_path, qa_dir):
    """One config holds every language: a language's rows are those of its ids; English validation
    is the last 10% of the English training rows, held out of training; few-shot draws from a target
    language's own training rows."""
    from xlt.data.splits import _load_raw

    repo = _tydiqa_copy(tmp_path / "xtreme", qa_dir)
    job = validate_job(composed_job(tmp_path / "p", "task=tydiqa", "data=xnli", f"data.hub_id={repo}",
                                    "languages.eval=[en,ar]", "model=tiny"))
    pin = data_pin(job)
    assert sorted(pin.files) == ["tydiqa/train", "tydiqa/validation"]
    english = [json.loads(line)["question"] for line in open(qa_dir / "train.en.jsonl")]
    train, held_out = (list(_load_raw(job, pin, split, "en")["question"]) for split in ("train", "validation"))
    assert len(train) == 144 and len(held_out) == 16 and sorted(train + held_out) == sorted(english)
    arabic = _load_raw(job, pin, "test", "ar")
    assert len(arabic) == 30 and all(i.startswith("arabic-") for i in arabic["id"])

    result = run_job(tmp_path / "o", "task=tydiqa", "data=xnli", f"data.hub_id={repo}", *QA_TINY,
                     "languages.eval=[en,ar]", "train.epochs=1")
    metrics = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'o' / 'mlflow.db'}").get_run(result["run_id"]).data.metrics
    assert (metrics["train/rows"], metrics["validation/en/rows"], metrics["test/ar/rows"]) == (144, 16, 30)
    assert "test/ar/f1" in metrics and not any("/ko/" in key for key in metrics)

    few = validate_job(composed_job(tmp_path / "f", "task=tydiqa", "data=xnli", f"data.hub_id={repo}",
                                    "languages.eval=[en,ar]", "model=tiny", "protocol=few_shot", "protocol.shots=4"))
    assert ("ar", "train") in splits_read(few)
    assert all(i.startswith("arabic-") for i in _load_raw(few, data_pin(few), "train", "ar")["id"])


def test_the_mlqa_gxlt_preset_tests_english_questions_on_each_languages_contexts(tmp_path, qa_dir):
    """experiment=mlqa_gxlt: google/xtreme's MLQA.<context>.en configs, under a task name of its own
    (MLQA's published same-language scores are not its references)."""
    parts = {"SQuAD/train": "train.en", **{f"MLQA.{lang}.en/{split}": f"{split}.{lang}" for lang in ("en", "de")
                                           for split in ("validation", "test")}}
    repo = _xtreme_copy(tmp_path / "xtreme", {part: _rows(qa_dir, name) for part, name in parts.items()})
    job = validate_job(composed_job(tmp_path / "p", "experiment=mlqa_gxlt", f"data.hub_id={repo}", "model=tiny",
                                    "languages.eval=[en,de]"))
    assert job.task.name == "mlqa_gxlt" and job.task.answer_normalisation == "mlqa"
    assert sorted(data_pin(job).files) == sorted(parts)


def test_the_report_of_qa_runs_shows_f1_and_tests_it_per_question(qa_runs, tmp_path):
    from xlt.report.publish import report
    from xlt.report.significance import Examples, compare
    from xlt.tracking.predictions import load_statistics

    out, results = qa_runs
    uri = f"sqlite:///{out / 'mlflow.db'}"
    markdown = (report(uri, tmp_path / "r", experiment="xlt") / "report.md").read_text()
    assert "test f1 with the weights `train.select` chose" in markdown and "(chance" not in markdown
    findings = markdown.split("## Findings")[1]
    assert "fine_tune" in findings and "lora" in findings and "mean target-language test f1" in findings
    # A question's windows sum to that question: the paired test's estimate is the runs' own F1 difference.
    ids = [results[t]["run_id"] for t in ("fine_tune", "lora")]
    examples = Examples({i: load_statistics(uri, i) for i in ids}, lambda sums: qa.score("f1", sums))
    assert all(len(examples.stats[i].tested("de")) == 30 for i in ids)
    de = compare(examples, [[ids[0]]], [[ids[1]]], LANGS, ["de"])["de"]
    f1 = [mlflow.MlflowClient(uri).get_run(i).data.metrics["test/de/f1"] for i in ids]
    assert de.diff == pytest.approx(f1[0] - f1[1], abs=1e-6) and de.low <= de.diff <= de.high


def test_a_run_that_answers_nothing_raises_its_alarms():
    enc = encoded([CONTEXT, CONTEXT], [answer("Tokyo"), answer("Berlin")], max_length=64, stride=16)
    logits = np.zeros((len(enc["input_ids"]), 64, 2), dtype=np.float32)
    logits[:, 1, :] = 9  # every window's best start and end are in the question: no span in a context
    one_best = dataclasses.replace(XQUAD, n_best=1)
    found = qa.prediction_alarms(one_best, "en", {"en": (logits, None)}, {"en": _features(enc)})
    assert found == ["learns nothing: F1 0 in every language (en)",
                     "en empty answers only: every one of its 2 questions gets an empty answer"]
