"""A task's rows as JSON Lines, each line checked by the task's kind (xlt.tasks): e.g. XNLI's
`{"premise": str, "hypothesis": str, "label": 0|1|2}`, PAN-X's `{"tokens": [...], "ner_tags": [...]}`.

Read with every row checked, so that a bad line is reported by file and line number before any
job starts (xlt.cli.precheck) rather than as a traceback from the loss. Light on purpose: no
`datasets`, no torch.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType
from typing import Dict, List

from xlt.config.schema import TaskConfig
from xlt.core.errors import ConfigError
from xlt.tasks import task_kind


def columns(task: TaskConfig) -> List[str]:
    """The columns of a task's rows, as its kind reads them."""
    return task_kind(task).columns(task)


def _unique_keys(pairs: list) -> dict:
    """A JSON object whose keys are each written once (json.loads keeps the last of a repeated key)."""
    keys = [key for key, _ in pairs]
    repeated = sorted({key for key in keys if keys.count(key) > 1})
    if repeated:
        raise ValueError(f"repeats the key {', '.join(map(json.dumps, repeated))}; write each key once")
    return dict(pairs)


def _row(line: str):
    """A line's JSON object, or ValueError saying what is wrong with it."""
    try:
        row = json.loads(line, object_pairs_hook=_unique_keys)
    except json.JSONDecodeError as e:
        raise ValueError(f"is not valid JSON ({e.msg})") from None
    try:
        json.dumps(row, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as e:  # a lone surrogate escape ("\ud800"): no text, tokenizers and MLflow fail on it
        raise ValueError(f"has a lone surrogate ({e.object[e.start:e.end].encode('unicode_escape').decode()}), "
                         "which is no character: fix the escape") from None
    return row


def checked_row(kind: ModuleType, row, task: TaskConfig, where: str) -> dict:
    """A row its task's kind accepts, as the kind keeps it (`normalise`, where it has one); else a
    ConfigError naming `where` (file:line) and the problem."""
    problem = kind.row_problem(row, task)
    if problem:
        raise ConfigError("data.dir", f"{where} {problem}")
    normalise = getattr(kind, "normalise", None)
    return normalise(row, task) if normalise else row


def read_jsonl(path: Path, task: TaskConfig) -> Dict[str, list]:
    """Read a task's JSONL file into columns; raises ConfigError naming `path:line` and the fix."""
    kind = task_kind(task)
    rows: Dict[str, list] = {c: [] for c in kind.columns(task)}
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            where = f"{path}:{number}"
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ConfigError("data.dir", f"{where} is not UTF-8 (byte {raw[e.start]:#04x} at column "
                                              f"{e.start + 1}); save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                row = _row(line)
            except ValueError as e:
                raise ConfigError("data.dir", f"{where} {e}") from None
            row = checked_row(kind, row, task, where)
            for c in rows:
                rows[c].append(row[c])
    return rows


def count_rows(path: Path) -> int:
    """A local split's rows, counted without reading them (its non-blank lines; CoNLL-U: its sentences)."""
    if path.suffix == ".conllu":
        from xlt.data.conllu import count_sentences

        return count_sentences(path)
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())


def read_local(path: Path, task: TaskConfig) -> Dict[str, list]:
    """A local split's rows into columns, by its suffix: JSON Lines, or CoNLL-U (xlt.data.conllu)."""
    if path.suffix == ".conllu":
        from xlt.data.conllu import read_conllu

        return read_conllu(path, task)
    return read_jsonl(path, task)
