"""The seed script's way, as the baseline of benchmarks/bench_cpu.py.

Hugging Face Trainer; every pair padded to 512 tokens; feature extraction freezes every
encoder parameter (its rule also freezes a randomly initialised pooler) and still runs the
encoder at every step; all languages evaluated every `--eval-steps`. Prints one JSON line.
"""
import argparse
import json
import time

import numpy as np
from datasets import Dataset
from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer, TrainingArguments

from xlt.config import task_preset
from xlt.data.jsonl import read_jsonl


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--technique", choices=["fine_tune", "feature_extraction"], required=True)
    p.add_argument("--langs", default="en,de,fr,es,ar,zh")
    p.add_argument("--train-samples", type=int, required=True)
    p.add_argument("--eval-samples", type=int, required=True)
    p.add_argument("--test-samples", type=int, required=True)
    p.add_argument("--epochs", type=float, default=3)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--lr", type=float, default=5e-5)
    p.add_argument("--eval-steps", type=int, default=500)
    p.add_argument("--out", default="/tmp/seed_way")
    a = p.parse_args()
    start = time.perf_counter()
    langs = a.langs.split(",")
    tok = AutoTokenizer.from_pretrained(a.model)

    def load(split, lang, n):
        rows = read_jsonl(f"{a.data}/{split}.{lang}.jsonl", task_preset("xnli"))
        ds = Dataset.from_dict(rows).select(range(n))
        return ds.map(lambda b: tok(b["premise"], b["hypothesis"], padding="max_length", truncation=True,
                                    max_length=512), batched=True, remove_columns=["premise", "hypothesis"])

    train = load("train", "en", a.train_samples)
    val = {lang: load("validation", lang, a.eval_samples) for lang in langs}
    test = {lang: load("test", lang, a.test_samples) for lang in langs}
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=3)
    if a.technique == "feature_extraction":
        for name, param in model.named_parameters():
            if name.startswith(model.base_model_prefix):
                param.requires_grad = False

    def accuracy(pred):
        return {"accuracy": float(np.mean(pred.predictions.argmax(-1) == pred.label_ids))}

    args = TrainingArguments(output_dir=a.out, per_device_train_batch_size=a.batch_size,
                             per_device_eval_batch_size=a.batch_size, learning_rate=a.lr,
                             num_train_epochs=a.epochs, eval_strategy="steps", eval_steps=a.eval_steps,
                             logging_steps=50, save_strategy="no", report_to="none", seed=42,
                             disable_tqdm=True)
    trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, compute_metrics=accuracy)
    out = trainer.train().metrics
    metrics = trainer.evaluate(test, metric_key_prefix="test")
    targets = [metrics[f"test_{lang}_accuracy"] for lang in langs if lang != "en"]
    print(json.dumps({
        "wall_s": time.perf_counter() - start,
        "train_samples_per_second": out["train_samples_per_second"],
        "train_runtime_s": out["train_runtime"],
        "test_runtime_s": sum(metrics[f"test_{lang}_runtime"] for lang in langs),
        "test_en_accuracy": metrics["test_en_accuracy"],
        "test_target_mean_accuracy": float(np.mean(targets)),
        "test_accuracy": {lang: metrics[f"test_{lang}_accuracy"] for lang in langs},
    }))


if __name__ == "__main__":
    main()
