"""Token classification (issue 34): encoding, metrics as seqeval and XTREME compute them, bad input
in one line, and PAN-X/UD-POS jobs run in-process on the tiny model through JSONL, CoNLL-U and a
stand-in of google/xtreme in its real layout."""
import json

import mlflow
import numpy as np
import pytest
from seqeval.metrics import f1_score
from tasks.token_data import CONLLU, TOKEN_LEARNS, write_ner

from xlt.cli.precheck import check
from xlt.config import task_preset
from xlt.data.splits import data_pin
from xlt.model.loading import build_tiny_tokenizer
from xlt.protocols import validate_job
from xlt.tasks import token_classification as token
from xlt.tracking.predictions import load_predictions

from jobs import composed_job, run_job

PANX = task_preset("panx")


def test_entity_f1_from_summed_counts_is_seqevals_micro_f1():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG", "I-ORG", "O", "B-PER"], ["O", "O"]]
    pred = [["B-PER", "I-PER", "O", "O"], ["O", "B-ORG", "O", "O", "B-PER"], ["B-LOC", "O"]]
    ids = {tag: i for i, tag in enumerate(PANX.labels)}
    width = max(map(len, gold))
    def as_ids(rows):
        return (np.array([[ids[t] for t in r] + [token.IGNORED] * (width - len(r)) for r in rows]))
    sums = token.example_statistics(as_ids(pred), as_ids(gold), PANX).sum(axis=0)
    assert sums.tolist() == [2, 2, 2, 8, 11]  # tp fp fn (ORG's I- broken: a miss and a false find), words right
    assert token.score("f1", sums) == pytest.approx(f1_score(gold, pred))
    assert token.metrics(as_ids(pred), as_ids(gold), PANX)["accuracy"] == pytest.approx(8 / 11)


def test_pos_f1_is_seqevals_over_raw_tags_as_xteme_reports_it():
    udpos = task_preset("udpos")
    gold, pred = [["NOUN", "VERB", "VERB", "DET"]], [["NOUN", "VERB", "NOUN", "DET"]]
    ids = {tag: i for i, tag in enumerate(udpos.labels)}
    sums = token.example_statistics(np.array([[ids[t] for t in pred[0]]]), np.array([[ids[t] for t in gold[0]]]),
                                    udpos).sum(axis=0)
    with pytest.warns(UserWarning):  # seqeval warns that POS tags are no NE tags, and scores them anyway
        expected = f1_score(gold, pred)
    assert token.score("f1", sums) == pytest.approx(expected)


def test_the_first_sub_word_carries_the_tag_and_a_long_sentence_is_split_never_cut():
    tokenizer = build_tiny_tokenizer(2000)
    words = ["Anna", "unbelievably", "went", "to", "Berlin"] * 6
    tags = [1, 0, 0, 0, 5] * 6
    enc = token.encode({"tokens": [words], "ner_tags": [tags], "row": [7]}, tokenizer, PANX, max_length=16)
    assert len(enc["input_ids"]) > 1 and set(enc["row"]) == {7}  # pieces of row 7
    assert sum(enc["words"]) == len(words)  # every word in exactly one piece
    labelled = [label for labels in enc["labels"] for label in labels if label != token.IGNORED]
    assert labelled == tags  # one label per word, in order
    assert all(len(ids) <= 16 for ids in enc["input_ids"])


@pytest.mark.parametrize("row, problem", [
    ({"tokens": ["a", "b"], "ner_tags": ["O", "B-MISC"]}, "has the tag 'B-MISC' in ner_tags, not one of task=panx's "
                                                          "labels (O, B-PER, I-PER, B-ORG, I-ORG, B-LOC, I-LOC) nor "
                                                          "their ids 0-6"),
    ({"tokens": ["a", "b"], "ner_tags": ["O"]}, "has 2 words in tokens and 1 tags in ner_tags; give one tag per word"),
    ({"tokens": [], "ner_tags": []}, "has no words in tokens; leave the sentence out"),
    ({"premise": "p", "hypothesis": "h", "label": 0}, "needs the keys tokens, ner_tags of task=panx (it has "
                                                      "premise, hypothesis, label: another task's data?)"),
])
def test_bad_token_rows_are_one_line_naming_file_and_line(tmp_path, row, problem):
    data = write_ner(tmp_path / "d", langs=("en",))
    path = data / "test.en.jsonl"
    number = len(path.read_text().splitlines()) + 1
    with open(path, "a") as f:
        f.write(json.dumps(row) + "\n")
    assert check(["task=panx", "model=tiny", "data=jsonl", f"data.dir={data}", "languages.eval=[en]",
                  f"output_dir={tmp_path}/o"]) == f"data.dir: {path}:{number} {problem}"
    assert not (tmp_path / "o").exists()


def test_token_data_given_to_a_sentence_task_is_named(tmp_path):
    data = write_ner(tmp_path / "d", langs=("en",))
    said = check(["model=tiny", "data=jsonl", f"data.dir={data}", "languages.eval=[en]"])
    assert said.startswith(f"data.dir: {data / 'train.en.jsonl'}:1 needs the keys premise, hypothesis, label of "
                           "task=xnli (it has tokens, ner_tags: another task's data?)"), said


@pytest.mark.parametrize("overrides, line", [
    (["protocol=translate_train"], "protocol: task=panx supports protocol=zero_shot or few_shot only (its data has no "
                                   "translate_train rows); choose one of those"),
    (["task.metric=bleu"], "task.metric: unknown value 'bleu'; allowed: f1, accuracy, precision, recall"),
    (["languages.eval=[en,xx]"], "languages.eval: unknown value 'xx'; allowed: af, ar, bg, bn, de, el, en, es, et, "
                                 "eu, fa, fi, fr, he, hi, hu, id, it, ja, jv, ka, kk, ko, ml, mr, ms, my, nl, pt, ru, "
                                 "sw, ta, te, th, tl, tr, ur, vi, yo, zh"),
])
def test_what_a_token_task_cannot_do_is_one_line(overrides, line):
    assert check(["task=panx", "model=tiny", "data=sample", *overrides]) == line


def test_ner_jobs_log_f1_per_language_select_by_it_and_keep_word_level_predictions(ner_runs, ner_dir):
    out, results = ner_runs
    client = mlflow.MlflowClient(f"sqlite:///{out / 'mlflow.db'}")
    for technique, result in results.items():
        run = client.get_run(result["run_id"])
        assert run.data.tags["xlt.metric"] == "f1" and result["metric"] == "f1"
        for name in ("test/en/f1", "test/de/f1", "test/target_mean/f1", "test/de/accuracy", "validation/en/f1"):
            assert name in run.data.metrics, (technique, name)
        assert result["target_score"] == run.data.metrics["test/target_mean/f1"]
        # The rules are learnable: a run that learns finds entities (a majority-tag guess, all O, scores 0).
        assert run.data.metrics["test/en/f1"] > 0.3, technique
        assert not result["alarms"], result["alarms"]
    predictions = load_predictions(f"sqlite:///{out / 'mlflow.db'}", results["fine_tune"]["run_id"])
    selected = predictions[predictions["weights"] == "selected"]
    rows = [json.loads(line) for line in open(ner_dir / "test.de.jsonl")]
    first = selected[(selected["lang"] == "de")].set_index("row").loc[0]
    assert first["gold"] == rows[0]["ner_tags"] and len(first["pred"]) == len(rows[0]["tokens"])


@pytest.mark.parametrize("technique", ["feature_extraction", "bitfit"])
def test_every_technique_and_few_shot_run_on_a_token_task(tmp_path, ner_dir, technique):
    result = run_job(tmp_path, "task=panx", "data=jsonl", f"data.dir={ner_dir}", "languages.eval=[en,de]",
                     f"technique={technique}", "protocol=few_shot", "protocol.shots=8", *TOKEN_LEARNS)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}").get_run(result["run_id"])
    assert run.data.metrics["train/rows"] == 160 + 8 and "test/target_mean/f1" in run.data.metrics


def test_udpos_from_conllu_files_runs_end_to_end(tmp_path):
    for split in ("train", "validation", "test"):
        for lang in ("en", "de"):
            (tmp_path / f"{split}.{lang}.conllu").write_text(CONLLU * 12)
    long = "".join(f"{i}\tHaus\tHaus\tNOUN\t_\t_\t0\troot\t_\t_\n" for i in range(1, 201))
    (tmp_path / "test.de.conllu").write_text(CONLLU * 11 + f"# sent_id = long\n{long}\n")  # over 128 tokens
    result = run_job(tmp_path / "o", "task=udpos", "data=conllu", f"data.dir={tmp_path}", "languages.eval=[en,de]",
                     *TOKEN_LEARNS)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'o' / 'mlflow.db'}").get_run(result["run_id"])
    assert run.data.metrics["test/de/accuracy"] > 0.5 and "test/de/f1" in run.data.metrics
    assert run.data.metrics["test/en/rows"] == 12  # sentences; the multi-word token `zum` left out of each
    # The long German sentence is split into pieces, and still counted as one sentence.
    assert run.data.metrics["test/de/rows"] == 12 and run.data.metrics["test/de/split_rows"] >= 1


def test_a_bad_conllu_sentence_names_its_file_and_first_line(tmp_path):
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.en.conllu").write_text(CONLLU + CONLLU.replace("NOUN", "NOUNISH"))
    assert check(["task=udpos", "model=tiny", "data=conllu", f"data.dir={tmp_path}", "languages.eval=[en]"]) == (
        f"data.dir: {tmp_path / 'train.en.conllu'}:8 has the tag 'NOUNISH' in pos_tags, not one of task=udpos's labels "
        "(ADJ, ADP, ADV, AUX, CCONJ, DET, INTJ, NOUN, NUM, PART, PRON, PROPN, PUNCT, SCONJ, SYM, VERB, X) nor their "
        "ids 0-16")


def test_panx_from_a_copy_of_google_xtreme_reads_only_the_languages_asked(tmp_path, ner_dir):
    """google/xtreme's layout: PAN-X.<lang>/<split>-00000-of-00001.parquet, tags as ClassLabel ids."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    repo = tmp_path / "xtreme"
    for lang in ("en", "de", "fr"):
        for split in ("train", "validation", "test"):
            rows = [json.loads(line) for line in open(ner_dir / f"{split}.{'en' if lang == 'fr' else lang}.jsonl")]
            folder = repo / f"PAN-X.{lang}"
            folder.mkdir(parents=True, exist_ok=True)
            table = pa.table({"tokens": [r["tokens"] for r in rows],
                              "ner_tags": [[PANX.labels.index(t) for t in r["ner_tags"]] for r in rows],
                              "langs": [[lang] * len(r["tokens"]) for r in rows]})
            pq.write_table(table, folder / f"{split}-00000-of-00001.parquet")
    result = run_job(tmp_path / "o", "task=panx", "data=xnli", f"data.hub_id={repo}", "languages.eval=[en,de]",
                     *TOKEN_LEARNS)
    run = mlflow.MlflowClient(f"sqlite:///{tmp_path / 'o' / 'mlflow.db'}").get_run(result["run_id"])
    assert run.data.metrics["test/de/rows"] == 40 and "test/fr/f1" not in run.data.metrics
    job = validate_job(composed_job(tmp_path / "p", "task=panx", "data=xnli", f"data.hub_id={repo}",
                                    "languages.eval=[en,de]", "model=tiny"))
    assert sorted(data_pin(job).files) == ["PAN-X.de/test", "PAN-X.de/validation", "PAN-X.en/test", "PAN-X.en/train",
                                           "PAN-X.en/validation"]


def test_the_report_of_token_runs_shows_f1_and_tests_it_from_entity_counts(ner_runs, tmp_path):
    from xlt.report.publish import report
    from xlt.report.significance import Examples, compare
    from xlt.tracking.predictions import load_statistics

    out, results = ner_runs
    uri = f"sqlite:///{out / 'mlflow.db'}"
    markdown = (report(uri, tmp_path / "r", experiment="xlt") / "report.md").read_text()
    assert "test f1 with the weights `train.select` chose" in markdown
    assert "the bootstrap over one run's test items" in markdown
    findings = markdown.split("## Findings")[1]
    assert "fine_tune" in findings and "lora" in findings and "mean target-language test f1" in findings
    # The paired test scores F1 from summed counts: its point estimate is the runs' own F1 difference.
    ids = [results[t]["run_id"] for t in ("fine_tune", "lora")]
    examples = Examples({i: load_statistics(uri, i) for i in ids}, lambda sums: token.score("f1", sums))
    de = compare(examples, [[ids[0]]], [[ids[1]]], ["en", "de"], ["de"])["de"]
    client = mlflow.MlflowClient(uri)
    f1 = [client.get_run(i).data.metrics["test/de/f1"] for i in ids]
    assert de.diff == pytest.approx(f1[0] - f1[1], abs=1e-6)
    assert de.low <= de.diff <= de.high and de.seeds == (1, 1)
