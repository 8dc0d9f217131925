"""Which parameters train, per architecture, and that cached heads equal the models' own."""
import pytest
import torch

from xlt.config import ModelConfig, TinyShape
from xlt.data.hub import model_source
from xlt.model.freezing import freeze_encoder
from xlt.model.heads import PooledClassifier, classify
from xlt.model.loading import build_tiny_tokenizer, load_model, load_tokenizer
from xlt.model.pooling import pool

from conftest import E5, LABELS, needs_shared
from standins.checkpoints import load_local, saved_encoder


def trainable_after_freezing(model, missing):
    return {name.rsplit(".", 1)[0] for name in freeze_encoder(model, missing)}


@pytest.mark.parametrize("kind, head", [
    ("bert", {"classifier"}),  # the pretrained pooler stays frozen
    ("xlmr", {"classifier.dense", "classifier.out_proj"}),
    ("distilbert", {"pre_classifier", "classifier"}),  # must not stay frozen at random init
])
def test_feature_extraction_trains_exactly_the_head(tmp_path, kind, head):
    model, missing = saved_encoder(tmp_path, kind)
    assert trainable_after_freezing(model, missing) == head


def test_tiny_model_freezes_its_random_encoder():
    tok = build_tiny_tokenizer(300)
    cfg = ModelConfig(name="tiny", source="tiny", tiny=TinyShape())
    model, missing = load_model(cfg, model_source(cfg), tok, LABELS)
    assert missing == [] and trainable_after_freezing(model, missing) == {"classifier"}
    assert model.config.num_labels == 3 and model.config.id2label[2] == "contradiction"


@needs_shared
def test_pooler_missing_from_checkpoint_trains_instead_of_staying_random():
    model, missing = load_local(E5)
    assert "bert.pooler.dense.weight" in missing
    assert trainable_after_freezing(model, missing) == {"bert.pooler.dense", "classifier"}
    cfg = ModelConfig(name="e5", source="local", path=str(E5))
    assert load_tokenizer(cfg, model_source(cfg)).pad_token_id == 1


@pytest.mark.parametrize("kind", ["bert", "xlmr", "distilbert"])
def test_cached_head_gives_the_models_own_logits(tmp_path, kind):
    model, _ = saved_encoder(tmp_path, kind)
    model.eval()
    ids = torch.randint(5, 100, (3, 7))
    mask = torch.ones_like(ids)
    mask[0, 5:] = 0
    with torch.no_grad():
        expected = model(input_ids=ids, attention_mask=mask).logits
        states = model.base_model(input_ids=ids, attention_mask=mask).last_hidden_state
        assert torch.allclose(classify(model, pool(states, mask, "cls")), expected, atol=1e-5)
        assert torch.allclose(PooledClassifier(model, "cls")(ids, mask).logits, expected, atol=1e-5)
        # Mean pooling averages real tokens only.
        assert torch.allclose(pool(states, mask, "mean")[0], states[0, :5].mean(0), atol=1e-6)


def test_tiny_tokenizer_is_the_same_in_every_process():
    import subprocess
    import sys

    code = ("from xlt.model.loading import build_tiny_tokenizer as b; "
            "from xlt.data.splits import tokenizer_fingerprint as f; print(f(b(2000)))")
    prints = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout
              for _ in range(2)}
    assert len(prints) == 1 and len(prints.pop().strip()) == 64
