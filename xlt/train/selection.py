"""Model selection, the zero-shot protocol: which weights are tested at the end of training.

Every evaluation round scores the weights on validation data: `en_dev` by the training
language's accuracy (the standard protocol: no target-language data is looked at),
`target_dev` by the mean target-language accuracy (an oracle, for comparison only), `last`
by nothing. The best round's trainable weights are kept in memory (frozen ones never change);
a checkpoint saved to stop a job carries them in one file, so a resumed job selects exactly
as an uninterrupted one. Trainer's `load_best_model_at_end` would instead write a full
checkpoint at every evaluation and cannot rank by a mean over languages.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import torch
from transformers import TrainerCallback

from xlt.core.metrics import Rounds, from_trainer_logs, target_mean

log = logging.getLogger(__name__)
SELECTION_STATE_FILE = "xlt_selection.pt"  # inside a checkpoint directory


class ModelSelection(TrainerCallback):
    def __init__(self, select: str, languages: List[str], train_language: str):
        self.select, self.train_language = select, train_language
        self.rounds = Rounds(languages)
        self.best_step: Optional[int] = None
        self.best_score = float("-inf")
        self.best_state: Optional[Dict[str, torch.Tensor]] = None

    def score(self, accuracy: Dict[str, float]) -> float:
        if self.select == "target_dev":
            return target_mean(accuracy, self.train_language)
        return accuracy[self.train_language]

    def on_evaluate(self, args, state, control, metrics=None, model=None, **kwargs):
        accuracy = self.rounds.add(from_trainer_logs(metrics or {})).get("validation")
        if self.select == "last" or accuracy is None:
            return
        score = self.score(accuracy)
        if score > self.best_score:  # ties keep the earlier round
            self.best_step, self.best_score = state.global_step, score
            self.best_state = {name: p.detach().to("cpu", copy=True)
                               for name, p in model.named_parameters() if p.requires_grad}

    def on_save(self, args, state, control, **kwargs):
        if self.best_state is not None:
            path = Path(args.output_dir) / f"checkpoint-{state.global_step}" / SELECTION_STATE_FILE
            torch.save({"step": self.best_step, "score": self.best_score, "state": self.best_state}, path)

    def resume_from(self, checkpoint: Path) -> None:
        path = Path(checkpoint) / SELECTION_STATE_FILE
        if path.is_file():
            saved = torch.load(path, map_location="cpu")
            self.best_step, self.best_score, self.best_state = saved["step"], saved["score"], saved["state"]

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
    if selection.best_step in (None, last_step) or not selection.restore_best(trainer.model):
        trainer.log({"test_" + key[len("testlast_"):]: value for out in last.values()
                     for key, value in out.metrics.items() if key.endswith(("_accuracy", "_loss"))})
        return last_step, last, last
    return selection.best_step, predict_languages(trainer, test_data, "test"), last
