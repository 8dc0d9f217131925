"""Encoders with the head of a task's kind over its labels: from the hub, a local directory,
or tiny (a random BERT with a WordPiece vocabulary built from the bundled sample)."""
from __future__ import annotations

from types import ModuleType
from typing import Iterable, List, Optional, Tuple

from xlt.config.schema import ModelConfig
from xlt.core.errors import ConfigError, first_line
from xlt.data.hub import ModelSource
from xlt.tasks import sentence_classification


def _label_maps(labels: List[str]) -> dict:
    return {"num_labels": len(labels), "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)}}


def tiny_vocab(texts: Iterable[str], size: int, specials: List[str]) -> List[str]:
    """A WordPiece vocabulary from piece frequencies: word-initial characters, `##` continuations
    and whole words, most frequent first, ties broken alphabetically.

    Built by hand because the `tokenizers` trainer breaks ties in hash order, which differs
    between processes: the same config must give the same tokenizer, and so the same metrics.
    """
    from collections import Counter

    from tokenizers import normalizers, pre_tokenizers

    norm, pre = normalizers.BertNormalizer(lowercase=False), pre_tokenizers.BertPreTokenizer()
    words = Counter(w for text in texts for w, _ in pre.pre_tokenize_str(norm.normalize_str(text)))
    pieces: Counter = Counter()
    for word, n in words.items():
        pieces[word[0]] += n
        for char in word[1:]:
            pieces["##" + char] += n
        if len(word) > 1:
            pieces[word] += n
    ranked = sorted(pieces, key=lambda piece: (-pieces[piece], piece))
    return specials + ranked[: max(0, size - len(specials))]


def build_tiny_tokenizer(vocab_size: int):
    """A cased WordPiece tokenizer over the bundled XNLI sample, built in well under a second."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    from xlt.data.splits import sample_texts

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {piece: i for i, piece in enumerate(tiny_vocab(sample_texts(), vocab_size, specials))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=False)  # splits CJK characters
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]",
                                   model_input_names=["input_ids", "token_type_ids", "attention_mask"])


def _where(source: ModelSource) -> str:
    return source.path if source.revision is None else f"{source.path}@{source.revision[:12]}"


def load_tokenizer(cfg: ModelConfig, source: ModelSource):
    if cfg.source == "tiny":
        return build_tiny_tokenizer(cfg.tiny.vocab_size)
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(source.path, revision=source.revision)
    except OSError as e:
        raise ConfigError("model.path", f"cannot load the tokenizer of {_where(source)}: {first_line(e)}") from e


def load_model(cfg: ModelConfig, source: ModelSource, tokenizer, labels: List[str],
               kind: Optional[ModuleType] = None) -> Tuple[object, List[str]]:
    """The model with the head of the task's kind (xlt.tasks; default: sentence classification)
    over `labels`, and the names of its parameters that were newly initialised."""
    kind = kind or sentence_classification
    if cfg.source == "tiny":
        config = _tiny_config(cfg, vocab_size=len(tokenizer), pad_token_id=tokenizer.pad_token_id,
                              **_label_maps(labels))
        # A random encoder stands in for a pretrained one: nothing counts as "missing".
        return kind.model_class(tiny=True)(config), []

    try:
        model, info = kind.model_class(tiny=False).from_pretrained(
            source.path, revision=source.revision, output_loading_info=True, **_label_maps(labels))
    except OSError as e:
        raise ConfigError("model.path", f"cannot load {_where(source)}: {first_line(e)}") from e
    return model, list(info["missing_keys"])


def set_head_dropout(model, p: float) -> int:
    """Set the dropout of every module outside the encoder (the head's); returns how many."""
    from torch import nn

    prefix = model.base_model_prefix
    heads = [m for name, m in model.named_modules()
             if isinstance(m, nn.Dropout) and name != prefix and not name.startswith(prefix + ".")]
    for module in heads:
        module.p = p
    return len(heads)


def _tiny_config(cfg: ModelConfig, **extra):
    """The tiny model's BERT config, of its shape (`model.tiny`)."""
    from transformers import BertConfig

    shape = cfg.tiny
    return BertConfig(hidden_size=shape.hidden_size, num_hidden_layers=shape.num_layers,
                      num_attention_heads=shape.num_heads, intermediate_size=shape.intermediate_size, **extra)


def encoder_config(cfg: ModelConfig):
    """The encoder's transformers config where it can be read without downloading (the tiny shape,
    a local directory, the hub cache); None where it cannot: the job finds out as it loads."""
    from transformers import AutoConfig

    if cfg.source == "tiny":
        return _tiny_config(cfg)
    try:
        return AutoConfig.from_pretrained(cfg.path, revision=cfg.revision, local_files_only=True)
    except (OSError, ValueError):
        return None


def linear_names(module) -> List[str]:
    """The names (last part) of a module's linear layers: what LoRA's target_modules name."""
    from torch import nn

    return sorted({name.rsplit(".", 1)[-1] for name, m in module.named_modules() if isinstance(m, nn.Linear)})


def linear_layers(config) -> List[str]:
    """The linear layers of an encoder of this config, from a weightless instance of its class."""
    import torch
    from transformers import AutoModel

    with torch.device("meta"):
        return linear_names(AutoModel.from_config(config))
