"""What became of one job of a sweep: the summary's row, beside Hydra's JobReturn."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional

FINISHED, FAILED, KILLED, NOT_STARTED, SKIPPED = "FINISHED", "FAILED", "KILLED", "NOT STARTED", "SKIPPED"


@dataclass
class Outcome:
    num: int
    overrides: List[str]
    status: str = NOT_STARTED
    seconds: float = 0.0
    run_id: Optional[str] = None
    target_score: Optional[float] = None  # the mean target-language test value of its task's metric
    error: str = ""
    job_return: Any = None  # Hydra's JobReturn, when a launcher gave one
    alarms: List[str] = field(default_factory=list)  # the run's numbers look broken (xlt.train.alarms)

    def take_result(self, value) -> None:
        """A finished job's return value: xlt's job returns its run id and transfer score."""
        if isinstance(value, dict):
            self.run_id = self.run_id or value.get("run_id")
            self.target_score = value.get("target_score")
            self.alarms = list(value.get("alarms") or [])
            if value.get("skipped"):  # another run held the job (xlt.tracking.lease)
                self.status, self.error = SKIPPED, value["skipped"]


def exit_status(outcomes: List[Outcome]) -> int:
    """130 if the sweep was stopped, 1 if a job failed, else 0."""
    statuses = {o.status for o in outcomes}
    return 130 if statuses & {KILLED, NOT_STARTED} else 1 if FAILED in statuses else 0
