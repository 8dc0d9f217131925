"""Protocols (xlt/protocols) and the PAWS-X task: which files each protocol reads, which rows it
trains on, the jobs a sweep makes of it, and its bad input; end to end on the tiny model and the
real encoder, offline, from local copies of the dataset repos in their hub layout."""
import pytest
from hydra import compose, initialize_config_dir

from xlt.cli.precheck import check
from xlt.config import CONF_DIR, register_schema, validate
from xlt.data.hub import pin_dataset
from xlt.data.jsonl import read_jsonl
from xlt.data.splits import load_encoded
from xlt.model.loading import build_tiny_tokenizer
from xlt.protocols import check as check_protocol
from xlt.protocols import splits_read
from xlt.sweep.grid import protocol_jobs

from commands import run_xlt
from conftest import E5, XNLI, needs_shared
from jobs import run_job
from standins.dataset_repos import dataset_mirror, jsonl_copy
from stores import assert_findings_heed_alarms, mlflow_runs

pytestmark = needs_shared  # the stand-ins are made of the shared XNLI rows
LANGS = ("en", "de", "fr")
POOL = 40  # each target language's training pool: its last validation rows


@pytest.fixture(scope="module")
def mirrors(tmp_path_factory):
    root = tmp_path_factory.mktemp("repos")
    return {"xnli": dataset_mirror(root / "xnli", XNLI, "xnli", LANGS, pool=POOL),
            "pawsx": dataset_mirror(root / "pawsx", XNLI, "pawsx", LANGS, pool=POOL),
            "xnli_jsonl": jsonl_copy(root / "xnli_jsonl", XNLI, "xnli", LANGS, pool=POOL)}


def typed(*overrides):
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=["model=tiny", "languages.eval=[en,de,fr]", *overrides]))


def job(mirrors, *overrides, tmp_path=None):
    extra = [f"output_dir={tmp_path}"] if tmp_path else []
    return check_protocol(typed(f"data.hub_id={mirrors['xnli']}", *extra, *overrides))


EVAL = {(lang, split) for split in ("validation", "test") for lang in LANGS}


@pytest.mark.parametrize("overrides, reads", [
    ([], {("en", "train")} | EVAL),
    (["protocol=few_shot"], {("en", "train"), ("de", "train"), ("fr", "train")} | EVAL),
    (["protocol=few_shot", "protocol.shots=0"], {("en", "train")} | EVAL),
    (["protocol=translate_train", "protocol.target=de"], {("de", "train"), ("de", "validation"), ("de", "test")}),
    (["protocol=translate_train_all"], {(lang, "train") for lang in LANGS} | EVAL),
])
def test_each_protocol_pins_only_the_files_it_reads(mirrors, overrides, reads):
    cfg = job(mirrors, *overrides)
    assert set(splits_read(cfg)) == reads
    pin = pin_dataset(str(mirrors["xnli"]), "main", splits_read(cfg), cfg.task.hub_files)
    assert pin.files == {f"{lang}/{split}": [f"{lang}/{split}-00000-of-00001.parquet"] for lang, split in reads}


def pairs(mirrors, split, lang):
    rows = read_jsonl(mirrors["xnli_jsonl"] / f"{split}.{lang}.jsonl", typed().task)
    return list(zip(rows["premise"], rows["hypothesis"]))


def train_texts(mirrors, cfg, tmp_path):
    """The pairs a job trains on, per language, traced through each row's `row` to its file."""
    train = load_encoded(cfg, build_tiny_tokenizer(500)).train
    files = {lang: pairs(mirrors, "train", lang) for lang in set(train["lang"])}
    out = {}
    for lang, row in zip(train["lang"], train["row"]):
        out.setdefault(lang, []).append(files[lang][row])
    return out


def test_few_shot_draws_k_target_rows_from_the_training_split_only_and_per_seed(mirrors, tmp_path):
    def shots(seed, k=8):
        cfg = job(mirrors, "protocol=few_shot", f"protocol.shots={k}", "train.max_train_samples=30",
                  f"train.seed={seed}", "data.max_samples=10", tmp_path=tmp_path)
        return train_texts(mirrors, cfg, tmp_path)

    one, two = shots(1), shots(2)
    assert set(one["de"]) < set(shots(1, k=16)["de"])  # a curve's K=8 rows are among its K=16 ones
    assert {lang: len(texts) for lang, texts in one.items()} == {"en": 30, "de": 8, "fr": 8}
    for lang in ("de", "fr"):
        held_out = set(pairs(mirrors, "validation", lang) + pairs(mirrors, "test", lang))
        assert not set(one[lang]) & held_out  # never a validation or test row
        assert set(one[lang]) != set(two[lang])  # another seed, other shots


def test_translate_train_trains_in_its_language_and_all_on_every_one(mirrors, tmp_path):
    de = train_texts(mirrors, job(mirrors, "protocol=translate_train", "protocol.target=de", "data.max_samples=10",
                                  tmp_path=tmp_path), tmp_path)
    assert list(de) == ["de"] and sorted(de["de"]) == sorted(pairs(mirrors, "train", "de"))  # its pool, all of it
    every = train_texts(mirrors, job(mirrors, "protocol=translate_train_all", "train.max_train_samples=25",
                                     "data.max_samples=10", tmp_path=tmp_path), tmp_path)
    assert {lang: len(texts) for lang, texts in every.items()} == {"en": 25, "de": 25, "fr": 25}  # per language


def test_a_sweep_makes_one_translate_train_job_per_target_language(mirrors):
    grid = [["protocol=translate_train"], ["protocol=zero_shot"], ["protocol=translate_train", "protocol.target=fr"]]
    jobs = protocol_jobs(grid, lambda overrides: typed(f"data.hub_id={mirrors['xnli']}", *overrides))
    assert jobs == [["protocol=translate_train", "protocol.target=de"],
                    ["protocol=translate_train", "protocol.target=fr"],
                    ["protocol=zero_shot"], ["protocol=translate_train", "protocol.target=fr"]]
    assert check(["model=tiny", f"data.hub_id={mirrors['xnli']}", "languages.eval=[en,de,fr]",
                  "protocol=translate_train"], multirun=True) is None


def test_pawsx_is_a_task_of_its_own():
    cfg = typed("task=pawsx", "languages=pawsx7", "languages.eval=[en,de]")
    assert cfg.task.labels == ["different", "paraphrase"] and cfg.task.text_fields == ["sentence1", "sentence2"]
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):  # task=pawsx brings its seven languages
        assert validate(compose("config", overrides=["model=tiny", "task=pawsx"])).languages.eval == \
            ["en", "de", "es", "fr", "ja", "ko", "zh"]


@pytest.mark.parametrize("overrides, expected", [
    (["protocol=few_shot", "languages.eval=[en]"],
     "languages.eval: protocol few_shot needs a target language, but languages.eval lists only en"),
    (["protocol=translate_train_all", "languages.eval=[en]"], "languages.eval: protocol translate_train_all needs"),
    (["protocol=translate_train"], "protocol.target: translate_train trains one model per target language"),
    (["protocol=translate_train", "protocol.target=zh"], "protocol.target: 'zh' is not a target language"),
    (["protocol=few_shot", "protocol.shots=41"],
     f"protocol.shots: asks for 41 rows of the de train split, which has {POOL}; use protocol.shots={POOL} or fewer"),
    (["protocol=few_shot", "protocol.shots=-1"], "protocol.shots: is a number of rows per target language"),
    (["protocol=few_shot", "data=sample"], "data: protocol few_shot reads train.de.jsonl, train.fr.jsonl, which the "
                                           "bundled sample lacks"),
    (["task=pawsx"], "data.hub_id: {xnli}/en/train-00000-of-00001.parquet has the columns premise, hypothesis, "
                     "label; task=pawsx reads sentence1, sentence2, label"),
    (["task=pawsx", "data=jsonl", "data.dir={xnli_jsonl}"], "data.dir: {xnli_jsonl}/train.en.jsonl:1 needs the keys "
                                                            "sentence1, sentence2, label of task=pawsx"),
    (["task=pawsx", "languages.eval=[en,ar]"], "languages.eval: unknown value 'ar'; allowed: en, de, es, fr, ja, ko"),
    (["protocol=translate_train", "protocol.target=de", "train.select=en_dev"],
     "train.select: en_dev selects on en validation accuracy (protocol translate_train), but the protocol evaluates"),
])
def test_bad_protocol_input_is_one_line(mirrors, overrides, expected):
    overrides = [o.format(**mirrors) for o in overrides]
    problem = check(["model=tiny", f"data.hub_id={mirrors['xnli']}", "languages.eval=[en,de,fr]", *overrides])
    assert problem is not None and problem.startswith(expected.format(**mirrors)), problem


# -- end to end, as a user runs it ------------------------------------------------------------

TINY = ["model=tiny", "train.batch_size=16", "train.learning_rate=1e-3", "train.epochs=1", "data.max_samples=40",
        "train.max_train_samples=64", "tracking.aim.sync=false"]


@pytest.mark.heavy
def test_every_protocol_runs_end_to_end_and_the_report_compares_them(mirrors, tmp_path):
    result = run_xlt("-m", *TINY, f"data.hub_id={mirrors['xnli']}", "languages.eval=[en,de,fr]",
                     "protocol=zero_shot,translate_train,translate_train_all,few_shot", "protocol.shots=8",
                     "tracking.experiment=protocols", f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    _, runs = mlflow_runs(tmp_path, "protocols")
    by = {(r.data.params["protocol.name"], r.data.params.get("protocol.target", "None")): r for r in runs}
    assert set(by) == {("zero_shot", "None"), ("translate_train", "de"), ("translate_train", "fr"),
                       ("translate_train_all", "None"), ("few_shot", "None")}
    assert all(r.info.status == "FINISHED" for r in runs)
    de = by[("translate_train", "de")].data.metrics
    assert de["train/de/rows"] == de["train/rows"] == 40  # its pool, all German
    assert {k for k in de if k.startswith("test/") and k.endswith("/accuracy")} == {"test/de/accuracy",
                                                                                     "test/target_mean/accuracy"}
    assert by[("few_shot", "None")].data.metrics["train/rows"] == 64 + 2 * 8
    assert by[("translate_train_all", "None")].data.metrics["train/rows"] == 64 + 2 * 40
    report = next(tmp_path.glob("multirun/*/report/report.md")).read_text()
    table = [line for line in report.splitlines() if line.startswith("| tiny |")]
    assert sorted(line.split(" | ")[2] for line in table) == sorted(["few_shot", "translate_train",
                                                                     "translate_train_all", "zero_shot"])
    assert "protocols few_shot, translate_train, translate_train_all, zero_shot" in report
    findings = assert_findings_heed_alarms(report, runs)
    assert "On tiny, " in findings or "No finding" in findings
    logs = "".join(path.read_text() for path in tmp_path.glob("multirun/*/*/run.log"))
    for selection in ("de validation accuracy (the target language's", "en validation accuracy (the training",
                      "en+de+fr validation accuracy (the mean"):
        assert f"model selection: {selection}" in logs


@pytest.mark.heavy
@pytest.mark.parametrize("data", ["hub", "jsonl"])
def test_pawsx_runs_end_to_end_from_a_local_copy(mirrors, tmp_path, data):
    source = [f"data.hub_id={mirrors['pawsx']}"] if data == "hub" else \
        ["data=jsonl", f"data.dir={jsonl_copy(tmp_path / 'pawsx', XNLI, 'pawsx', LANGS, pool=POOL)}"]
    result = run_xlt(*TINY, "task=pawsx", "languages.eval=[en,de,fr]", *source, "tracking.experiment=pawsx",
                     f"output_dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    _, (run,) = mlflow_runs(tmp_path, "pawsx")
    assert run.data.params["task.name"] == "pawsx" and run.data.params["task.labels"] == "different,paraphrase"
    assert {f"test/{lang}/accuracy" for lang in LANGS} <= set(run.data.metrics)


@pytest.mark.heavy
def test_every_protocol_and_both_tasks_run_on_the_real_encoder(mirrors, tmp_path):
    """In-process, a job per protocol (the sweep that makes them: the tiny-model test above)."""
    real = ["model=local", f"model.path={E5}", "train.batch_size=16", "train.learning_rate=1e-4", "train.epochs=1",
            "data.max_samples=24", "train.max_train_samples=32", "languages.eval=[en,de]", "tracking.aim.sync=false",
            "tracking.experiment=real"]
    for protocol in (["protocol=zero_shot"], ["protocol=translate_train", "protocol.target=de"],
                     ["protocol=translate_train_all"], ["protocol=few_shot", "protocol.shots=8"]):
        run_job(tmp_path, *real, f"data.hub_id={mirrors['xnli']}", *protocol)
    run_job(tmp_path, *real, "task=pawsx", f"data.hub_id={mirrors['pawsx']}", "protocol=few_shot", "protocol.shots=8")
    _, runs = mlflow_runs(tmp_path, "real")
    assert sorted((r.data.params["task.name"], r.data.params["protocol.name"]) for r in runs) == [
        ("pawsx", "few_shot"), ("xnli", "few_shot"), ("xnli", "translate_train"), ("xnli", "translate_train_all"),
        ("xnli", "zero_shot")]
    assert all(r.info.status == "FINISHED" and 0 <= r.data.metrics["test/target_mean/accuracy"] <= 1 for r in runs)


def test_presets_sweep_xtremes_protocols_and_pawsx():
    from xlt.cli.precheck import job_overrides

    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        def jobs(*overrides):
            params = dict(compose("config", overrides=list(overrides), return_hydra_config=True).hydra.sweeper.params)
            return protocol_jobs(job_overrides(list(overrides), True, params),
                                 lambda o: validate(compose("config", overrides=o)))

        xtreme = jobs("experiment=xtreme_xnli", "languages=xnli6", "model=tiny")
        assert sorted(" ".join(o for o in job if o.startswith("protocol")) for job in xtreme) == [
            "protocol=translate_train protocol.target=ar", "protocol=translate_train protocol.target=de",
            "protocol=translate_train protocol.target=es", "protocol=translate_train protocol.target=fr",
            "protocol=translate_train protocol.target=zh", "protocol=translate_train_all", "protocol=zero_shot"]
        pawsx = [validate(compose("config", overrides=job)) for job in jobs("experiment=pawsx")]
        assert [(c.model.name, c.task.name, c.data.name, c.data.hub_id, c.languages.name) for c in pawsx] == [
            (m, "pawsx", "pawsx", "google-research-datasets/paws-x", "pawsx7") for m in ("mbert", "xlmr")]
