import json

import pytest

from xlt.config import SAMPLE_DIR, ProtocolConfig, TechniqueConfig, TinyShape, XltConfig, task_preset, validate
from xlt.core.errors import ConfigError
from xlt.data import splits as xdata
from xlt.data.jsonl import read_jsonl
from xlt.model.loading import build_tiny_tokenizer

XNLI = task_preset("xnli")


def sample_config(tmp_path, **train) -> XltConfig:
    cfg = XltConfig(task=XNLI, technique=TechniqueConfig(name="fine_tune"), protocol=ProtocolConfig(name="zero_shot"))
    cfg.model.name, cfg.model.source = "tiny", "tiny"
    cfg.model.tiny = TinyShape()
    cfg.languages.name, cfg.languages.eval = "pair", ["en", "de"]
    cfg.data.name, cfg.data.source = "sample", "sample"
    cfg.output_dir = str(tmp_path)
    for key, value in train.items():
        setattr(cfg.train, key, value)
    return validate(cfg)


@pytest.mark.parametrize("line, message", [
    ('{"premise": "a", "hypothesis": "b"', "not valid JSON"),
    ('{"premise": "a", "label": 0}', "needs the keys premise, hypothesis, label"),
    ('{"premise": "a", "hypothesis": "b", "label": "neutral"}', 'has label "neutral"; use the integer 0'),
    ('{"premise": "a", "hypothesis": "b", "label": 1.0}', "has label 1.0; use the integer 0 (entailment)"),
    ('{"premise": "a", "hypothesis": "b", "label": true}', "has label true; use the integer"),
    ('{"premise": "a", "hypothesis": "b", "label": 3}', "has label 3; use the integer"),
    ('{"premise": null, "hypothesis": "b", "label": 0}', "has premise None; it must be a string"),
    ('["a", "b", 0]', "needs the keys premise, hypothesis, label"),
])
def test_corrupt_jsonl_line_is_named_with_file_and_line(tmp_path, line, message):
    path = tmp_path / "train.en.jsonl"
    good = json.dumps({"premise": "p", "hypothesis": "h", "label": 1})
    path.write_text(f"{good}\n{good}\n{line}\n")
    with pytest.raises(ConfigError) as err:
        read_jsonl(path, XNLI)
    assert str(err.value).startswith(f"data.dir: {path}:3 ") and message in str(err.value)


def test_sample_splits_are_tokenized_selected_and_sorted(tmp_path):
    cfg = sample_config(tmp_path, max_train_samples=50, max_length=32)
    cfg.data.max_eval_samples = 40
    tok = build_tiny_tokenizer(500)
    enc = xdata.load_encoded(cfg, tok)
    assert len(enc.train) == 50 and set(enc.validation) == {"en", "de"}
    assert all(len(ds) == 40 for ds in enc.validation.values()) and len(enc.test["de"]) == 100
    lengths = enc.validation["de"]["length"]
    assert lengths == sorted(lengths) and max(lengths) <= 32  # length-sorted, truncated
    assert enc.train["length"] == [len(ids) for ids in enc.train["input_ids"]]
    # Pair encoding with segment ids: [CLS] premise [SEP] hypothesis [SEP]
    first = enc.train[0]
    assert first["input_ids"][0] == tok.cls_token_id and first["input_ids"].count(tok.sep_token_id) == 2
    assert first["token_type_ids"][-1] == 1 and first["token_type_ids"][0] == 0
    # The same labels as the file, in the same multiset (sorting only reorders rows).
    raw = read_jsonl(SAMPLE_DIR / "validation.de.jsonl", XNLI)["label"][:40]
    assert sorted(enc.validation["de"]["label"]) == sorted(raw)


def test_tokenized_splits_are_cached_and_shared(tmp_path, monkeypatch):
    cfg = sample_config(tmp_path, max_train_samples=30)
    tok = build_tiny_tokenizer(500)
    first = xdata.load_encoded(cfg, tok)
    entries = sorted(p.name for p in (tmp_path / "cache" / "tokenized").iterdir())
    assert len(entries) == 5  # train.en + validation/test for en and de

    def no_reading(*args):
        raise AssertionError("a cached split was read and tokenized again")

    monkeypatch.setattr(xdata, "_load_raw", no_reading)
    second = xdata.load_encoded(cfg, tok)  # another job of the same sweep
    assert second.train["input_ids"] == first.train["input_ids"]
    # A different selection is a different entry, never a stale hit.
    monkeypatch.undo()
    xdata.load_encoded(sample_config(tmp_path, max_train_samples=31), tok)
    assert len(list((tmp_path / "cache" / "tokenized").iterdir())) == 6


def test_train_subset_depends_on_the_seed(tmp_path):
    tok = build_tiny_tokenizer(500)
    a = xdata.load_encoded(sample_config(tmp_path, max_train_samples=20, seed=1), tok).train["input_ids"]
    b = xdata.load_encoded(sample_config(tmp_path, max_train_samples=20, seed=2), tok).train["input_ids"]
    assert a != b


def test_one_knob_caps_every_evaluated_split_and_the_split_knobs_win(tmp_path):
    cfg = sample_config(tmp_path, max_train_samples=20, max_length=32)
    cfg.data.max_samples = 30
    tok = build_tiny_tokenizer(500)
    enc = xdata.load_encoded(cfg, tok)
    assert len(enc.train) == 20 and {len(ds) for ds in [*enc.validation.values(), *enc.test.values()]} == {30}
    cfg.data.max_test_samples = 12
    enc = xdata.load_encoded(cfg, tok)
    assert {len(ds) for ds in enc.validation.values()} == {30} and {len(ds) for ds in enc.test.values()} == {12}


@pytest.mark.parametrize("rows, batch, epochs, given, expected", [
    (600, 32, 1.0, {}, (19, 4, 1)),  # 5 evaluation rounds, a progress line a step
    (9000, 32, 3.0, {}, (846, 170, 43)),  # the same share of a long run
    (600, 16, 2.0, {"eval_steps": 20, "logging_steps": 5}, (76, 20, 5)),  # given values win (the smoke preset)
    (10, 32, 0.5, {}, (1, 1, 1)),
])
def test_intervals_left_open_scale_with_the_run(tmp_path, rows, batch, epochs, given, expected):
    from xlt.train.trainer import schedule

    cfg = sample_config(tmp_path, batch_size=batch, epochs=epochs, **given)
    plan = schedule(cfg, rows)
    assert (plan.steps, plan.eval_steps, plan.logging_steps) == expected
