"""The zero-shot protocol: model selection, technique defaults, pooling, head dropout."""
import json
from types import SimpleNamespace

import pytest
import torch
from hydra import compose, initialize_config_dir
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
)

from xlt.cli.precheck import CONF_DIR
from xlt.config import ModelConfig, register_schema, validate
from xlt.data.hub import ModelSource, model_source
from xlt.model.freezing import freeze_encoder
from xlt.model.loading import set_head_dropout
from xlt.model.pooling import resolve_pooling
from xlt.train.selection import SELECTION_STATE_FILE as STATE_FILE
from xlt.train.selection import ModelSelection

SMALL = dict(vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
LANGS = ["en", "de", "fr"]
# step -> validation accuracy per language: en peaks at step 20, the target mean at step 30.
HISTORY = {10: (0.50, 0.40, 0.40), 20: (0.70, 0.42, 0.44), 30: (0.60, 0.55, 0.50), 40: (0.70, 0.45, 0.45)}


def replay(select, model, history=HISTORY):
    """Feed a known validation history to the callback, one language at a time as Trainer does;
    before each round the classifier's weights are set to the step number, so they tell the step."""
    scored_on = {"en_dev": ["en"], "target_dev": ["de", "fr"]}.get(select, [])
    selection = ModelSelection(select, LANGS, scored_on)
    for step, accuracies in history.items():
        model.classifier.weight.data.fill_(step)
        state = SimpleNamespace(global_step=step)
        for lang, accuracy in zip(LANGS, accuracies):
            selection.on_evaluate(None, state, None, metrics={f"eval_{lang}_accuracy": accuracy,
                                                               f"eval_{lang}_loss": 1.0}, model=model)
    return selection


@pytest.fixture
def bert():
    torch.manual_seed(0)
    return BertForSequenceClassification(BertConfig(**SMALL, num_labels=3))


@pytest.mark.parametrize("select, step", [("en_dev", 20), ("target_dev", 30)])
def test_selection_restores_the_best_rounds_weights(bert, select, step):
    selection = replay(select, bert)
    assert selection.best_step == step  # en_dev: the tie at step 40 keeps the earlier round
    assert bert.classifier.weight[0, 0] == 40  # the last round's weights until restored
    assert selection.restore_best(bert)
    assert torch.all(bert.classifier.weight == step)


def test_average_last_tests_the_mean_of_the_last_rounds_weights(bert, tmp_path):
    selection = replay("average_last", bert)  # the last 3 rounds: steps 20, 30, 40
    assert selection.averaged_steps == [20, 30, 40] and selection.best_step == 40
    assert not selection.is_current(40)  # the last step's weights are not the mean: restore them
    assert selection.restore_best(bert) and torch.all(bert.classifier.weight == 30)
    # A stop's checkpoint carries the window: the resumed job averages the same rounds.
    (tmp_path / "checkpoint-40").mkdir()
    selection.on_save(SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=40), None)
    resumed = ModelSelection("average_last", LANGS, [])
    resumed.resume_from(tmp_path / "checkpoint-40")
    assert resumed.averaged_steps == [20, 30, 40]
    assert torch.equal(resumed.best_state["classifier.weight"], selection.best_state["classifier.weight"])


def test_last_keeps_the_last_weights(bert):
    selection = replay("last", bert)
    assert selection.best_step is None and not selection.restore_best(bert)
    assert torch.all(bert.classifier.weight == 40)


def test_only_trainable_weights_are_kept_and_a_checkpoint_carries_them(bert, tmp_path):
    freeze_encoder(bert, [])  # feature extraction: the encoder never changes
    selection = replay("en_dev", bert)
    assert set(selection.best_state) == {"classifier.weight", "classifier.bias"}
    (tmp_path / "checkpoint-40").mkdir()
    selection.on_save(SimpleNamespace(output_dir=str(tmp_path)), SimpleNamespace(global_step=40), None)
    assert (tmp_path / "checkpoint-40" / STATE_FILE).is_file()
    resumed = ModelSelection("en_dev", LANGS, ["en"])
    resumed.resume_from(tmp_path / "checkpoint-40")
    assert (resumed.best_step, resumed.best_score) == (20, 0.70)
    assert resumed.restore_best(bert) and torch.all(bert.classifier.weight == 20)


def compose_job(*overrides):
    register_schema()
    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return validate(compose("config", overrides=["model=tiny", "data=sample", *overrides]))


def training(cfg):
    return cfg.train.learning_rate, cfg.train.epochs, cfg.train.batch_size


def test_each_technique_brings_its_own_training_defaults():
    assert training(compose_job("technique=fine_tune")) == (5e-5, 3, 32)
    assert training(compose_job("technique=feature_extraction")) == (1e-3, 10, 32)
    assert compose_job().train.select == "dev"


def test_command_line_and_presets_override_technique_defaults():
    for technique in ("fine_tune", "feature_extraction"):
        cfg = compose_job(f"technique={technique}", "train.learning_rate=2e-4", "train.epochs=4")
        assert training(cfg)[:2] == (2e-4, 4)
        # The blog preset reproduces the seed for both techniques.
        assert training(compose_job(f"technique={technique}", "experiment=blog", "data=sample",
                                    "model=tiny")) == (5e-5, 3, 8)
        assert training(compose_job(f"technique={technique}", "experiment=smoke")) == (1e-3, 2, 16)


def write_json(path, data):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


def auto_pooling(cfg):
    return resolve_pooling(cfg, model_source(cfg))


@pytest.mark.parametrize("modes, expected", [
    ({"pooling_mode_mean_tokens": True}, "mean"),
    ({"pooling_mode_cls_token": True}, "cls"),
    ({"pooling_mode_max_tokens": True}, "cls"),  # not applied by xlt: the architecture's own
])
def test_auto_pooling_reads_the_sentence_transformers_config(tmp_path, modes, expected):
    write_json(tmp_path / "modules.json", [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    write_json(tmp_path / "1_Pooling" / "config.json", {"word_embedding_dimension": 16, **modes})
    write_json(tmp_path / "config.json", {})
    pooling, why = auto_pooling(ModelConfig(name="st", source="local", path=str(tmp_path)))
    assert pooling == expected and "1_Pooling/config.json" in why


def test_auto_pooling_without_a_config_is_the_heads_own_input(tmp_path):
    write_json(tmp_path / "config.json", {})
    assert auto_pooling(ModelConfig(name="m", source="local", path=str(tmp_path)))[0] == "cls"
    explicit = ModelConfig(name="m", source="local", path=str(tmp_path), pooling="mean")
    assert auto_pooling(explicit) == ("mean", "model.pooling=mean")


def test_auto_pooling_reads_a_hub_model_from_the_cache(tmp_path, monkeypatch):
    # huggingface_hub's cache layout: models--ORG--NAME/{refs/main, snapshots/<commit>/...}
    repo = tmp_path / "models--intfloat--multilingual-e5-small"
    commit = "a" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    write_json(snapshot / "modules.json", [{"path": "1_Pooling", "type": "sentence_transformers.models.Pooling"}])
    write_json(snapshot / "1_Pooling" / "config.json", {"pooling_mode_mean_tokens": True})
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path))
    source = ModelSource("intfloat/multilingual-e5-small", commit, "")
    assert resolve_pooling(ModelConfig(name="e5", source="hub", path=source.path), source)[0] == "mean"


@pytest.mark.parametrize("model", [
    BertForSequenceClassification(BertConfig(**SMALL)),
    XLMRobertaForSequenceClassification(XLMRobertaConfig(**SMALL)),
    DistilBertForSequenceClassification(DistilBertConfig(vocab_size=100, dim=16, n_layers=1, n_heads=2,
                                                         hidden_dim=32)),
], ids=["bert", "xlmr", "distilbert"])
def test_dropout_reaches_the_head_only(model):
    before = {n: m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    assert set_head_dropout(model, 0.35) == 1
    after = {n: m.p for n, m in model.named_modules() if isinstance(m, torch.nn.Dropout)}
    changed = {n for n in after if after[n] != before[n]}
    assert len(changed) == 1 and not next(iter(changed)).startswith(model.base_model_prefix)
    assert after[next(iter(changed))] == 0.35
