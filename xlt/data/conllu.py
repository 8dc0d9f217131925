"""A token task's rows from Universal Dependencies CoNLL-U files (one's own treebank), read by
the `conllu` package: a sentence's words (FORM) and their UPOS tags, multi-word token ranges
(`1-2 du`) and empty nodes (`8.1`) left out, as XTREME's UD-POS does. Each sentence is checked by
the task's kind, and a bad one is reported by file and the line it starts on."""
from __future__ import annotations

from pathlib import Path
from typing import Dict

from xlt.config.schema import TaskConfig
from xlt.core.errors import ConfigError
from xlt.data.jsonl import checked_row
from xlt.tasks import task_kind


def _sentence_lines(text: str):
    """(first line number, text) of each sentence block."""
    block, start = [], 1
    for number, raw in enumerate(text.split("\n"), start=1):
        if raw.strip():
            if not block:
                start = number
            block.append(raw)
        elif block:
            yield start, "\n".join(block) + "\n"
            block = []
    if block:
        yield start, "\n".join(block) + "\n"


def count_sentences(path: Path) -> int:
    """The sentence blocks of a CoNLL-U file (xlt.data.jsonl.count_rows)."""
    return sum(1 for _ in _sentence_lines(path.read_text(encoding="utf-8")))


def read_conllu(path: Path, task: TaskConfig) -> Dict[str, list]:
    import conllu

    kind = task_kind(task)
    words_field, tags_field = kind.columns(task)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError("data.dir", f"{path} is not UTF-8 (byte {e.object[e.start]:#04x} at offset {e.start}); "
                                      "save the file as UTF-8") from None
    rows: Dict[str, list] = {words_field: [], tags_field: []}
    for start, block in _sentence_lines(text):
        try:
            tokens = [t for sentence in conllu.parse(block) for t in sentence if isinstance(t["id"], int)]
        except Exception as e:  # noqa: BLE001 - conllu's parse errors have no common base; they name the bad field
            raise ConfigError("data.dir", f"{path}:{start} is not CoNLL-U ({type(e).__name__}: {e})") from None
        if not tokens:
            continue  # a block of comments only
        row = {words_field: [t["form"] for t in tokens], tags_field: [t["upos"] for t in tokens]}
        row = checked_row(kind, row, task, f"{path}:{start}")
        rows[words_field].append(row[words_field]), rows[tags_field].append(row[tags_field])
    return rows
