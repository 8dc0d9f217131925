"""What `xlt sync` remembers between syncs: `<aim repo>/xlt_sync.json`, written atomically.

Per MLflow run: its Aim run's hash, per metric the latest point seen and how many points were
written, the artifacts written, and the run's meta (status, tags) when last synced.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List

SYNC_STATE_FILE = "xlt_sync.json"
FORMAT = 1  # bump when the state's meaning changes


class SyncState:
    """The sync's memory, one JSON file written atomically (write, then rename)."""

    def __init__(self, repo_dir: Path):
        self.path = repo_dir / SYNC_STATE_FILE
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if data.get("format") != FORMAT:
            data = {}
        self.runs: Dict[str, dict] = data.get("runs", {})
        self.foreign: List[str] = data.get("foreign", [])  # Aim runs that no MLflow run made

    def save(self) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".xlt_sync.")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "runs": self.runs, "foreign": self.foreign}, f)
        os.replace(tmp, self.path)

    def new_entry(self, run_id: str, aim_hash: str) -> dict:
        entry = self.runs[run_id] = {"aim_hash": aim_hash, "metrics": {}, "artifacts": [], "meta": None}
        return entry
