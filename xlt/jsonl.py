"""XNLI as JSON Lines: `{"premise": str, "hypothesis": str, "label": 0|1|2}` per line.

Read with every row checked, so that a bad line is reported by file and line number before
any job starts (xlt/precheck.py) rather than as a traceback from the loss. Light on purpose:
no `datasets`, no torch.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Dict

LABELS = ("entailment", "neutral", "contradiction")
COLUMNS = ("premise", "hypothesis", "label")

_LABEL_FIX = "use the integer 0 (entailment), 1 (neutral) or 2 (contradiction)"


def _problem(row) -> str | None:
    if not isinstance(row, dict) or any(c not in row for c in COLUMNS):
        return "needs the keys premise, hypothesis, label"
    for c in ("premise", "hypothesis"):
        if not isinstance(row[c], str):
            return f"has {c} {row[c]!r}; it must be a string"
    label = row["label"]
    # 1.0 and true compare equal to 1: pandas writes them, and the loss then fails on them.
    if type(label) is not int or label not in (0, 1, 2):
        return f"has label {json.dumps(label)}; {_LABEL_FIX}"
    return None


def read_jsonl(path: Path) -> Dict[str, list]:
    """Read an XNLI JSONL file into columns; raises ConfigError naming `path:line` and the fix."""
    from xlt.errors import ConfigError

    rows: Dict[str, list] = {c: [] for c in COLUMNS}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise ConfigError("data.dir", f"{where} is not valid JSON ({e.msg})") from None
            problem = _problem(row)
            if problem:
                raise ConfigError("data.dir", f"{where} {problem}")
            for c in COLUMNS:
                rows[c].append(row[c])
    return rows
