"""Ctrl-C and SIGTERM during training: stop at a clean point with a checkpoint to resume from.

The first signal lets training run on to the next logging step (`train.logging_steps`), saves a
checkpoint there and stops. Stopping on a logging step is what makes a resumed run's metrics
equal an uninterrupted run's: Trainer averages the training loss since the last logged step,
and that running sum is not part of a checkpoint. A second signal, or one outside the training
loop, stops at once.
"""
from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import Optional

from transformers import TrainerCallback

log = logging.getLogger(__name__)


class Interrupted(KeyboardInterrupt):
    """The job stopped on a signal; `checkpoint` is where it can resume from, if anywhere."""

    def __init__(self, checkpoint: Optional[Path] = None):
        super().__init__(f"interrupted, resumable from {checkpoint.name}" if checkpoint else "interrupted")
        self.checkpoint = checkpoint


class GracefulStop(TrainerCallback):
    def __init__(self):
        self.requested = False
        self.checkpoint: Optional[Path] = None
        self._training = False

    def install(self) -> "GracefulStop":
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum, frame):
        if self._training and not self.requested:
            self.requested = True
            log.warning("%s: stopping at the next logging step with a checkpoint (again: stop now)",
                        signal.Signals(signum).name)
            return
        raise KeyboardInterrupt

    def on_train_begin(self, args, state, control, **kwargs):
        self._training = True

    def on_train_end(self, args, state, control, **kwargs):
        self._training = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.requested and state.global_step % args.logging_steps == 0:
            control.should_save = True
            control.should_training_stop = True

    def on_save(self, args, state, control, **kwargs):
        if self.requested:
            self.checkpoint = Path(args.output_dir) / f"checkpoint-{state.global_step}"

    def raise_if_requested(self) -> None:
        if self.requested:
            raise Interrupted(self.checkpoint)
