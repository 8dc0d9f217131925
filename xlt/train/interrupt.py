"""Ctrl-C and SIGTERM during training: stop at a clean point with a checkpoint to resume from.

The first signal lets the current optimizer step finish, saves a checkpoint and stops. The
checkpoint also holds Trainer's running training-loss sum since the last logged step (not
part of a Trainer checkpoint), so a resumed run logs the same losses as an uninterrupted
one. A second signal, or one outside the training loop, stops at once.

Under submitit (hydra/launcher=submitit_slurm or submitit_local), its preemption and timeout
signal (SIGUSR2 unless SUBMITIT_PREEMPT_SIGNAL says otherwise) is handled the same way; once
the run has ended KILLED with its checkpoint, the signal is handed to submitit, which requeues
the job. The requeued job finds that checkpoint and resumes the run exactly.
"""
from __future__ import annotations

import json
import logging
import os
import signal
from pathlib import Path
from typing import Optional

from transformers import TrainerCallback

from xlt.tracking.store import CHECKPOINT_OWNER

log = logging.getLogger(__name__)
LOSS_FILE = "xlt_loss.json"  # in a stop's checkpoint: Trainer's loss sums since the last log


class Interrupted(KeyboardInterrupt):
    """The job stopped on a signal; `checkpoint` is where it can resume from, if anywhere."""

    def __init__(self, checkpoint: Optional[Path] = None, reason: Optional[str] = None):
        super().__init__(f"{reason or 'interrupted'}" + (f", resumable from {checkpoint.name}" if checkpoint else ""))
        self.checkpoint, self.reason = checkpoint, reason


class GracefulStop(TrainerCallback):
    def __init__(self):
        self.requested = False
        self.reason: Optional[str] = None  # why, when not a signal: the run's error tag
        self.checkpoint: Optional[Path] = None
        self._training = False
        self.trainer = None  # set by attach(): the loss sums live on the Trainer
        self._resume: Optional[Path] = None
        self._requeue = None  # submitit's handler of its preemption signal, when running under it
        self._preempted_by: Optional[int] = None  # that signal, once it stopped training

    def attach(self, trainer, resume_from: Optional[Path]) -> None:
        self.trainer, self._resume = trainer, resume_from

    def install(self) -> GracefulStop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        preempt = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), None)
        if preempt is not None and callable(signal.getsignal(preempt)):  # submitit's own handler
            self._requeue = signal.getsignal(preempt)
            signal.signal(preempt, self._on_preempt)
        return self

    def _on_preempt(self, signum, frame):
        if not self._training:  # nothing to checkpoint yet (or any more): submitit requeues as it is
            self._requeue(signum, frame)
            return
        self._preempted_by = signum
        self._on_signal(signum, frame)

    def requeue(self) -> None:
        """Under submitit, after a preemption stop: hand the signal on (requeues; does not return)."""
        if self._preempted_by is not None:
            # SLURM ends the requeued job's old instance with SIGTERM: the run is saved already.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)
            self._requeue(self._preempted_by, None)

    def _on_signal(self, signum, frame):
        if self._training and not self.requested:
            self.requested = True
            log.warning("%s: stopping after this step with a checkpoint (again: stop now)",
                        signal.Signals(signum).name)
            return
        raise KeyboardInterrupt

    def request(self, reason: str) -> None:
        """Stop at the next step end with a checkpoint, as on a first signal (from any thread)."""
        if not self.requested:
            self.requested, self.reason = True, reason
            log.warning("%s: stopping after this step with a checkpoint", reason)

    def on_train_begin(self, args, state, control, **kwargs):
        self._training = True
        saved = self._resume / LOSS_FILE if self._resume else None
        if saved is not None and saved.is_file():  # after Trainer reset its sums for this train()
            sums = json.loads(saved.read_text())
            t = self.trainer
            t._tr_loss.fill_(sums["tr_loss"])
            t._total_loss_scalar, t._globalstep_last_logged = sums["total_loss"], sums["last_logged_step"]

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested:
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if self.requested:
            import mlflow

            self.checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"
            (self.checkpoint / CHECKPOINT_OWNER).write_text(mlflow.active_run().info.run_id)
            t = self.trainer
            (self.checkpoint / LOSS_FILE).write_text(json.dumps({
                "tr_loss": t._tr_loss.item(), "total_loss": t._total_loss_scalar,
                "last_logged_step": t._globalstep_last_logged}))

    def raise_if_requested(self) -> None:
        if self.requested:
            raise Interrupted(self.checkpoint, self.reason)
