"""The end-of-sweep table: one row per job, printed and written into the sweep directory."""
from __future__ import annotations

from pathlib import Path
from typing import List

from hydra.core.utils import filter_overrides

from xlt.core.errors import one_line
from xlt.core.secrets import scrub
from xlt.sweep.outcome import Outcome

HEADER = ("job", "overrides", "status", "target score", "wall time", "run")


def common_overrides(outcomes: List[Outcome]) -> List[str]:
    """The overrides every job shares (the command line's fixed part), in the first job's order."""
    shared = set.intersection(*(set(filter_overrides(o.overrides)) for o in outcomes)) if len(outcomes) > 1 else set()
    return [o for o in filter_overrides(outcomes[0].overrides) if o in shared] if shared else []


def _row(o: Outcome, common: List[str]) -> tuple:
    score = "-" if o.target_score is None else f"{o.target_score:.4f}"
    seconds = "-" if not o.seconds else f"{o.seconds:.1f} s"
    status = f"{o.status} ({one_line(o.error)})" if o.error else o.status
    own = [x for x in filter_overrides(o.overrides) if x not in common]
    return (f"#{o.num}", " ".join(own) or "-", status, score, seconds, o.run_id or "-")


def table(outcomes: List[Outcome]) -> str:
    """A Markdown table that also reads well as plain text; the overrides every job shares are
    said once, above it, and each row shows the job's own."""
    common = common_overrides(outcomes)
    rows = [HEADER] + [_row(o, common) for o in sorted(outcomes, key=lambda o: o.num)]
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(HEADER))]
    lines = ["| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |" for r in rows]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    head = [f"Every job: {' '.join(common)}", ""] if common else []
    return scrub("\n".join(head + lines + alarm_lines(outcomes)))  # printed, and kept in summary.md


def alarm_lines(outcomes: List[Outcome]) -> List[str]:
    """`Alarms:` then one line per alarm, naming the job and its run (xlt.train.alarms)."""
    found = [f"- #{o.num} (run {o.run_id}): {alarm}" for o in sorted(outcomes, key=lambda o: o.num)
             for alarm in o.alarms]
    return ["", "Alarms (the numbers of these runs look broken, not merely weak):", *found] if found else []


def write(outcomes: List[Outcome], sweep_dir: Path) -> Path:
    path = sweep_dir / "summary.md"
    counts = {s: sum(o.status == s for o in outcomes) for s in dict.fromkeys(o.status for o in outcomes)}
    tally = ", ".join(f"{n} {s.lower()}" for s, n in counts.items())
    path.write_text(f"# Sweep {sweep_dir.name}: {tally}\n\n{table(outcomes)}\n")
    return path
