"""Token classification (PAN-X NER, UD-POS): a tag per word of a sentence.

Rows: a list of words (`text_fields[0]`, e.g. `tokens`) and one tag per word (`label_field`, e.g.
`ner_tags`), as names in `labels` or as their ids. Encoding follows XTREME and transformers'
token-classification example: a word's first sub-word carries its tag, the others (and the
special tokens) are ignored (-100); a word the tokenizer drops becomes the unknown token, so that
every word is predicted. A sentence longer than `max_length` is split between words into pieces
that each fit, never truncated: every piece keeps its row, and the job logs how many were split.

Metrics: F1, precision and recall over entities as the `seqeval` package finds them (its default,
conlleval-like mode: what XTREME's scripts report, for NER and for POS alike), and word accuracy.
Each sentence counts (true positives, false positives, false negatives, right words, words), so a
resample's F1 is recomputed from summed counts.
"""
from __future__ import annotations

import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from xlt.config import TaskConfig
from xlt.core.errors import ConfigError

METRICS = ("f1", "accuracy", "precision", "recall")
STATISTICS = ("tp", "fp", "fn", "right", "words")
PEFT_TASK_TYPE = "TOKEN_CLS"
# A tag per word: no pooling; a frozen encoder runs at every step (cached, it would keep a vector per sub-word).
POOLED = False
IGNORED = -100  # the label of sub-words after a word's first, and of special tokens
ONE_TAG = 0.99  # one tag for more than this share of a language's words, where gold has several, is an alarm


def columns(task: TaskConfig) -> List[str]:
    return [task.text_fields[0], task.label_field]


def row_problem(row, task: TaskConfig) -> Optional[str]:
    words_field, tags_field = columns(task)
    if not isinstance(row, dict) or any(c not in row for c in (words_field, tags_field)):
        has = f" (it has {', '.join(row)}: another task's data?)" if isinstance(row, dict) else ""
        return f"needs the keys {words_field}, {tags_field} of task={task.name}{has}"
    words, tags = row[words_field], row[tags_field]
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return f"has {words_field} {str(words)[:60]}; it must be a list of strings (the words)"
    if not words:
        return f"has no words in {words_field}; leave the sentence out"
    if not isinstance(tags, list) or len(tags) != len(words):
        n = len(tags) if isinstance(tags, list) else "no list of"
        return f"has {len(words)} words in {words_field} and {n} tags in {tags_field}; give one tag per word"
    for tag in tags:
        if tag_id(tag, task) is None:
            return (f"has the tag {tag!r} in {tags_field}, not one of task={task.name}'s labels "
                    f"({', '.join(task.labels)}) nor their ids 0-{len(task.labels) - 1}")
    return None


def check(cfg) -> None:
    """One column of words: a token task reads no sentence pair."""
    if len(cfg.task.text_fields) != 1:
        raise ConfigError("task.text_fields", f"a token task reads one column of words, got {cfg.task.text_fields}; "
                                              "e.g. task.text_fields=[tokens]")


def tag_id(tag, task: TaskConfig) -> Optional[int]:
    """A tag given by name or by id, as its id; None if it is neither."""
    if type(tag) is int:
        return tag if 0 <= tag < len(task.labels) else None
    return task.labels.index(tag) if isinstance(tag, str) and tag in task.labels else None


def normalise(row: dict, task: TaskConfig) -> dict:
    """A checked row with its tags as ids (a file may give names)."""
    tags_field = columns(task)[1]
    return {**row, tags_field: [tag_id(t, task) for t in row[tags_field]]}


def _pieces(counts: List[int], room: int) -> List[Tuple[int, int]]:
    """Word ranges [start, end) whose sub-words fit in `room`, greedily (a word longer than `room`
    alone: its sub-words are cut; only its first carries the tag)."""
    out, start, used = [], 0, 0
    for i, n in enumerate(counts):
        if used + n > room and i > start:
            out.append((start, i))
            start, used = i, 0
        used += n
    out.append((start, len(counts)))
    return out


def encode(rows: Dict[str, list], tokenizer, task: TaskConfig, max_length: int) -> Dict[str, list]:
    words_field, tags_field = columns(task)
    room = max_length - tokenizer.num_special_tokens_to_add()
    chunks, tags, source = [], [], []
    for words, ids, row in zip(rows[words_field], rows[tags_field], rows["row"]):
        # Word by word, as XTREME does: a word's pieces are the same wherever it stands.
        counts = [len(p) for p in tokenizer(list(words), add_special_tokens=False)["input_ids"]]
        words = [w if n else tokenizer.unk_token for w, n in zip(words, counts)]  # every word gets a prediction
        for start, end in _pieces([max(n, 1) for n in counts], room):
            chunks.append(words[start:end]), tags.append([tag_id(t, task) for t in ids[start:end]])
            source.append(row)
    enc = tokenizer(chunks, is_split_into_words=True, truncation=True, max_length=max_length)
    labels = []
    for i, chunk_tags in enumerate(tags):
        seen, out = set(), []
        for word in enc.word_ids(i):
            out.append(IGNORED if word is None or word in seen else chunk_tags[word])
            seen.add(word)
        labels.append(out)
    return {**enc, "labels": labels, "length": [len(ids) for ids in enc["input_ids"]], "row": source,
            "words": [len(t) for t in tags]}


def model_class(tiny: bool) -> type:
    import transformers

    return transformers.BertForTokenClassification if tiny else transformers.AutoModelForTokenClassification


def collator(tokenizer):
    from transformers import DataCollatorForTokenClassification

    return DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORED)


def preprocess_logits(logits, labels):
    return logits.argmax(dim=-1)  # a tag per sub-word: the probabilities of every tag would not pay their memory


def _word_tags(predictions: np.ndarray, label_ids: np.ndarray) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Per example, the predicted and gold tag ids of its words (their first sub-words)."""
    preds, golds = [], []
    for pred, gold in zip(np.asarray(predictions), np.asarray(label_ids)):
        keep = gold != IGNORED
        preds.append(pred[keep].astype(np.int64)), golds.append(gold[keep].astype(np.int64))
    return preds, golds


def _entities(tags: List[str]) -> set:
    from seqeval.metrics.sequence_labeling import get_entities

    with warnings.catch_warnings():  # POS tags have no B-/I- prefix: seqeval warns, and counts as XTREME's F1 does
        warnings.simplefilter("ignore")
        return set(get_entities(tags))


def _counts(pred: np.ndarray, gold: np.ndarray, labels: List[str]) -> List[float]:
    found, true = _entities([labels[i] for i in pred]), _entities([labels[i] for i in gold])
    tp = len(found & true)
    return [tp, len(found) - tp, len(true) - tp, float(np.sum(pred == gold)), len(gold)]


def _statistics(preds: List[np.ndarray], golds: List[np.ndarray], labels: List[str]) -> np.ndarray:
    return np.array([_counts(p, g, labels) for p, g in zip(preds, golds)], dtype=np.float32).reshape(-1, 5)


def example_statistics(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig, features=None) -> np.ndarray:
    return _statistics(*_word_tags(predictions, label_ids), task.labels)


def score(metric: str, sums: np.ndarray) -> np.ndarray:
    tp, fp, fn, right, words = (sums[..., i] for i in range(5))
    with np.errstate(invalid="ignore", divide="ignore"):
        value = {"f1": 2 * tp / (2 * tp + fp + fn), "precision": tp / (tp + fp), "recall": tp / (tp + fn),
                 "accuracy": right / words}[metric]
    return np.nan_to_num(value)  # no entity found or none to find: 0, as seqeval scores it


def metrics(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig, features=None) -> Dict[str, float]:
    sums = example_statistics(predictions, label_ids, task).sum(axis=0)
    return {metric: float(score(metric, sums)) for metric in METRICS}


def _flat(parts: List[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int16) if parts else np.zeros(0, np.int16)


def prediction_arrays(predictions: np.ndarray, label_ids: np.ndarray, task: TaskConfig,
                      features=None) -> Dict[str, np.ndarray]:
    preds, golds = _word_tags(predictions, label_ids)
    return {"gold_words": np.array([len(g) for g in golds], dtype=np.int32), "gold_tags": _flat(golds),
            "pred_tags": _flat(preds)}


def prediction_alarms(task: TaskConfig, train_language: str, tested: Dict[str, Tuple[np.ndarray, np.ndarray]],
                      features=None) -> List[str]:
    """Learns nothing (no entity right in any language), and one tag for nearly every word of a
    language (e.g. "predicts only O") where its gold words have several."""
    words = {lang: _word_tags(*pair) for lang, pair in tested.items()}
    found: List[str] = []
    f1 = {lang: float(score("f1", _statistics(*pair, task.labels).sum(axis=0))) for lang, pair in words.items()}
    if f1 and all(v == 0 for v in f1.values()):
        found.append(f"learns nothing: F1 0 in every language ({', '.join(f1)}): no entity right")
    for lang, (preds, golds) in words.items():
        pred, gold = _flat(preds), _flat(golds)
        if not len(pred) or len(np.unique(gold)) < 2:
            continue
        counts = np.bincount(pred.astype(int), minlength=len(task.labels))
        if counts.max() > ONE_TAG * len(pred):
            found.append(f"{lang} one tag: predicts only {task.labels[counts.argmax()]} "
                         f"({counts.max() / len(pred):.0%} of {len(pred)} test words)")
    return found
