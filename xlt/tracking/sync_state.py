"""What `xlt sync` remembers between syncs: `<aim repo>/xlt_sync.json` and its journal.

Per MLflow run: its Aim run's hash, per metric the latest point seen and how many points were
written, the artifacts written, and the run's meta (status, tags) when last synced.

A run's entry is saved as its Aim run closes, by appending it to `xlt_sync.journal` (one JSON
line): a sync of 1,000 runs writes 1,000 lines, not the whole state 1,000 times. The next read
replays the journal over the state file; `compact` folds it in (written whole, then renamed)
as a sync ends. A line cut short by a crash is ignored: that run's points are written again,
which Aim overwrites in place.
"""
from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Dict, List

SYNC_STATE_FILE = "xlt_sync.json"
JOURNAL_FILE = "xlt_sync.journal"
FORMAT = 1  # bump when the state's meaning changes


class SyncState:
    """The sync's memory: a JSON file written atomically (write, then rename), and a journal of
    the runs synced since."""

    def __init__(self, repo_dir: Path):
        self.path, self.journal = repo_dir / SYNC_STATE_FILE, repo_dir / JOURNAL_FILE
        data = json.loads(self.path.read_text()) if self.path.is_file() else {}
        if data.get("format") != FORMAT:
            data = {}
        self.runs: Dict[str, dict] = data.get("runs", {})
        self.foreign: List[str] = data.get("foreign", [])  # Aim runs that no MLflow run made
        if data and self.journal.is_file():
            self._replay()

    def _replay(self) -> None:
        for line in self.journal.read_text().splitlines():
            try:
                record = json.loads(line)
            except ValueError:  # cut short by a crash: that run is synced again
                continue
            self.runs[record["run"]] = record["entry"]

    def save(self, run_id: str) -> None:
        """Record one run's entry (the state file written first if there is none yet)."""
        if not self.path.is_file():
            self.compact()
            return
        with open(self.journal, "a") as f:
            f.write(json.dumps({"run": run_id, "entry": self.runs[run_id]}) + "\n")

    def compact(self) -> None:
        """The whole state written atomically, the journal folded into it."""
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".xlt_sync.")
        with os.fdopen(fd, "w") as f:
            json.dump({"format": FORMAT, "runs": self.runs, "foreign": self.foreign}, f)
        os.replace(tmp, self.path)
        self.journal.unlink(missing_ok=True)

    def new_entry(self, run_id: str, aim_hash: str) -> dict:
        entry = self.runs[run_id] = {"aim_hash": aim_hash, "metrics": {}, "artifacts": [], "meta": None}
        return entry
