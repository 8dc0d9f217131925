"""The sync's memory: a run's entry is one journal line (not the whole state rewritten per run), a
line cut short by a crash costs only that run's re-sync, and a finished sync folds the journal in."""
import json

from xlt.tracking.sync_state import SyncState


def test_entries_survive_through_the_journal_a_torn_line_and_compaction(tmp_path):
    state = SyncState(tmp_path)
    for n in range(3):
        state.new_entry(f"run{n}", f"hash{n}")["metrics"]["train/loss"] = {"count": n}
        state.save(f"run{n}")
    assert json.loads(state.path.read_text())["runs"].keys() == {"run0"}  # the first save makes the file
    assert len(state.journal.read_text().splitlines()) == 2  # the others: a line each

    state.runs["run1"]["metrics"]["train/loss"]["count"] = 7  # synced again after more points
    state.save("run1")
    with open(state.journal, "a") as f:  # a crash in the middle of the next line
        f.write('{"run": "run3", "entry": {"aim_ha')

    again = SyncState(tmp_path)
    assert again.runs.keys() == {"run0", "run1", "run2"}
    assert again.runs["run1"]["metrics"]["train/loss"] == {"count": 7}  # the latest line wins
    again.compact()
    assert not again.journal.exists()
    assert SyncState(tmp_path).runs == again.runs
