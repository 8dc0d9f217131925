"""Model selection: which weights are tested at the end of training.

Every evaluation round scores the weights by the mean validation value of the task's headline
metric (accuracy, F1: xlt.tasks) over some languages
(xlt.protocols.selection_languages): `dev` those of the protocol (zero-shot: the training
language's, so no target-language data is looked at), `en_dev` the training language's,
`target_dev` the target languages' (an oracle, for comparison only); `last` by nothing.
`average_last` tests the mean of the last K rounds' trainable weights (checkpoint
averaging: less sensitive to the missing target dev set; K copies of them are held in memory).
The best round's trainable weights are kept in memory (frozen ones never change);
a checkpoint saved to stop a job carries them in one file, so a resumed job selects exactly
as an uninterrupted one. Trainer's `load_best_model_at_end` would instead write a full
checkpoint at every evaluation and cannot rank by a mean over languages.
"""
from __future__ import annotations

import logging
from collections import deque
from pathlib import Path
from typing import Deque, Dict, List, Optional, Tuple

import torch
from transformers import TrainerCallback

from xlt.core.metrics import Rounds, from_trainer_logs

log = logging.getLogger(__name__)
SELECTION_STATE_FILE = "xlt_selection.pt"  # inside a checkpoint directory


class ModelSelection(TrainerCallback):
    def __init__(self, select: str, languages: List[str], scored_on: List[str], average_last: int = 3,
                 metric: str = "accuracy", validated: Optional[List[str]] = None):
        self.select, self.scored_on = select, scored_on
        self.rounds = Rounds(languages, metric, validated)  # the task's headline metric (xlt.tasks)
        self.best_step: Optional[int] = None
        self.best_score = float("-inf")
        self.best_state: Optional[Dict[str, torch.Tensor]] = None
        self.recent: Deque[Tuple[int, Dict[str, torch.Tensor]]] = deque(maxlen=average_last)  # average_last

    @property
    def averaged_steps(self) -> List[int]:
        """The rounds whose weights `average_last` averages (empty for the other selections)."""
        return [step for step, _ in self.recent] if self.select == "average_last" else []

    def score(self, accuracy: Dict[str, float]) -> float:
        return sum(accuracy[lang] for lang in self.scored_on) / len(self.scored_on)

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        accuracy = self.rounds.add(from_trainer_logs(metrics or {})).get("validation")
        if self.select == "last" or accuracy is None:
            return
        if self.select == "average_last":
            self.recent.append((state.global_step, _trainable(model)))
            self.best_step = state.global_step
            self.best_state = {name: torch.stack([w[name] for _, w in self.recent]).mean(0)
                               for name in self.recent[0][1]}
            return
        score = self.score(accuracy)
        if score > self.best_score:  # ties keep the earlier round
            self.best_step, self.best_score = state.global_step, score
            self.best_state = _trainable(model)

    def on_save(self, args, state, control, **kwargs):
        if self.best_state is not None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / SELECTION_STATE_FILE
            torch.save({"step": self.best_step, "score": self.best_score, "state": self.best_state,
                        "recent": list(self.recent)}, path)

    def resume_from(self, checkpoint: Path) -> None:
        path = Path(checkpoint) / SELECTION_STATE_FILE
        if path.is_file():
            saved = torch.load(path, map_location="cpu")
            self.best_step, self.best_score, self.best_state = saved["step"], saved["score"], saved["state"]
            self.recent.extend(saved.get("recent", []))

    def is_current(self, step: int) -> bool:
        """Whether the selected weights are the model's own at `step` (then nothing is restored)."""
        return self.best_step in (None, step) and len(self.averaged_steps) < 2

    def restore_best(self, model) -> bool:
        """Load the best round's weights into `model`; False if they are the current ones."""
        if self.best_state is None:
            return False
        with torch.no_grad():
            for name, p in model.named_parameters():
                if name in self.best_state:
                    p.copy_(self.best_state[name])
        return True


def predict_languages(trainer, data: Dict[str, object], prefix: str) -> Dict[str, object]:
    """Trainer.evaluate over each language's dataset (the same metric records, logged the same
    way), keeping each language's PredictionOutput: probabilities and gold labels."""
    outputs = {}
    for lang, dataset in data.items():
        outputs[lang] = trainer.predict(dataset, metric_key_prefix=f"{prefix}_{lang}")
        trainer.log(outputs[lang].metrics)
    return outputs


def test_selected(trainer, selection: ModelSelection, test_data: dict) -> Tuple[int, dict, dict]:
    """Test the last weights (`test_last/...`) and the selected ones (`test/...`).

    Returns the step whose weights `test/...` measured, and each language's predictions for the
    selected and the last weights. When that is the last step, its metrics are logged again
    under `test/` instead of evaluating the same weights twice.
    """
    last_step = trainer.state.global_step
    last = predict_languages(trainer, test_data, "testlast")
    if selection.is_current(last_step) or not selection.restore_best(trainer.model):
        trainer.log({"test_" + key[len("testlast_"):]: value for out in last.values()
                     for key, value in out.metrics.items() if not key.endswith(("_runtime", "_per_second"))})
        return last_step, last, last
    return selection.best_step, predict_languages(trainer, test_data, "test"), last


def _trainable(model) -> Dict[str, torch.Tensor]:
    """A CPU copy of the weights that train (frozen ones never change)."""
    return {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters() if p.requires_grad}
