"""Local copies of the facebook/xnli and google-research-datasets/paws-x repos in the hub's layout,
and the same rows as JSONL, made of the shared XNLI rows."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

LANGS = ("en", "de", "fr", "es", "ar", "zh")

README = """---
language: [{langs}]
pretty_name: {name} (local copy for tests)
configs:
{configs}
---
# {name} (a local copy of {repo}'s layout)

Rows from XNLI 1.0 (CC BY-NC 4.0). {train}
"""
ENGLISH_TRAIN = ("Train files of languages other than English hold the English MultiNLI rows: only their size "
                 "and place matter to the tests.")
POOL_TRAIN = ("Train files of languages other than English hold the last {pool} validation rows of that "
              "language (a target-language pool, in its language); validation keeps the rest.")


def _xnli_rows(xnli: Path, lang: str, split: str, pool: Optional[int], train_rows: Optional[int]) -> dict:
    """XNLI rows standing in for a (language, split): see README above for the train files."""
    from xlt.config import task_preset
    from xlt.data.jsonl import read_jsonl

    task = task_preset("xnli")
    if split == "test":
        return read_jsonl(xnli / f"test.{lang}.jsonl", task)
    if split == "validation" or (pool and lang != "en"):
        rows = read_jsonl(xnli / f"validation.{lang}.jsonl", task)
        cut = slice(-pool, None) if split == "train" else slice(None, -pool if pool else None)
        return {k: v[cut] for k, v in rows.items()}
    train = read_jsonl(xnli / "train.en.jsonl", task)
    if train_rows:  # the real train split's size (392,702 rows), from the rows at hand
        reps = -(-train_rows // len(train["label"]))
        train = {k: (v * reps)[:train_rows] for k, v in train.items()}
    return train


def _as_pawsx(rows: dict) -> dict:
    """XNLI pairs as PAWS-X rows: paraphrase (1) where the premise entails the hypothesis."""
    return {"id": list(range(1, len(rows["label"]) + 1)), "sentence1": rows["premise"],
            "sentence2": rows["hypothesis"], "label": [int(label == 0) for label in rows["label"]]}


def _features(task: str):
    import datasets

    text = datasets.Value("string")
    if task == "pawsx":
        return datasets.Features({"id": datasets.Value("int32"), "sentence1": text, "sentence2": text,
                                  "label": datasets.ClassLabel(names=["0", "1"])})
    return datasets.Features({"premise": text, "hypothesis": text,
                              "label": datasets.ClassLabel(names=["entailment", "neutral", "contradiction"])})


MIRRORED = {"xnli": ("XNLI", "facebook/xnli"), "pawsx": ("PAWS-X", "google-research-datasets/paws-x")}


def dataset_mirror(into: Path, xnli: Path, task: str = "xnli", langs=LANGS, pool: Optional[int] = None,
                   train_rows: Optional[int] = None) -> Path:
    """The hub repo of `task` in its layout: <lang>/<split>-00000-of-00001.parquet, README `configs:`,
    label a ClassLabel; rows from the XNLI at `xnli` (PAWS-X's: XNLI pairs, entailment = paraphrase).
    `pool`: each target language's train file is its last `pool` validation rows."""
    import datasets
    import pyarrow.parquet as pq

    configs = []
    for lang in langs:
        configs.append(f"- config_name: {lang}\n  data_files:")
        for split in ("train", "test", "validation"):
            rows = _xnli_rows(xnli, lang, split, pool, train_rows)
            rows = _as_pawsx(rows) if task == "pawsx" else rows
            path = into / lang / f"{split}-00000-of-00001.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            # Repeated rows (train_rows) would shrink to their dictionary: store them plain, as real text is.
            table = datasets.Dataset.from_dict(rows, features=_features(task)).data.table  # features in its metadata
            pq.write_table(table, path, use_dictionary=not (train_rows and split == "train"))
            configs.append(f"  - split: {split}\n    path: {lang}/{split}-*")
    name, repo = MIRRORED[task]
    train = POOL_TRAIN.format(pool=pool) if pool else ENGLISH_TRAIN
    (into / "README.md").write_text(README.format(langs=", ".join(langs), configs="\n".join(configs),
                                                  name=name, repo=repo, train=train))
    return into


def xnli_mirror(into: Path, xnli: Path, langs=LANGS, train_rows: Optional[int] = None) -> Path:
    """`facebook/xnli`'s layout, every train file English (`dataset_mirror`)."""
    return dataset_mirror(into, xnli, "xnli", langs, train_rows=train_rows)


def jsonl_copy(into: Path, xnli: Path, task: str = "xnli", langs=LANGS, pool: Optional[int] = None) -> Path:
    """The same rows as `dataset_mirror`, as data=jsonl reads them: {split}.{lang}.jsonl."""
    import json

    into.mkdir(parents=True, exist_ok=True)
    for lang in langs:
        for split in ("train", "validation", "test"):
            rows = _xnli_rows(xnli, lang, split, pool, None)
            rows = _as_pawsx(rows) if task == "pawsx" else rows
            lines = [json.dumps(dict(zip(rows, values)), ensure_ascii=False) for values in zip(*rows.values())]
            (into / f"{split}.{lang}.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return into
