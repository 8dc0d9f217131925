"""Extractive QA on the real encoder, on rule-made questions: does a span model trained on English learn and
transfer above trivial answers?

    python benchmarks/bench_span_questions.py [--shared ../shared]  # writes benchmarks/results_span_questions.json

No QA corpus reaches this machine, so the questions are made by rule from real XNLI premises
(shared/data/xnli; benchmarks/span_questions.py): "what comes after «X»?" in each language, answered by
the one or two words (Chinese: two characters) after X. Synthetic: it measures that xlt's span
pipeline (windows, targets, the span search, answers mapped back to text, MLQA's scoring) learns from
English and carries over, not reading comprehension.

The baselines, scored by the same MLQA F1 and exact match: the empty answer, the whole context (the
first sentence: each context is one premise), and its first two words. xlt's side: `python run.py
task=mlqa data=jsonl`, fine-tuning multilingual-e5-small, as a user runs it.
"""
import argparse
import json
import tempfile
from pathlib import Path

from sides import REPO, task_run
from span_questions import span_task

from xlt.tasks._answers import exact_and_f1, tokenizer_for

SIZES = {"train": 2000, "validation": 200, "test": 500}  # English training questions; per language after
LANGS = ["en", "de", "es", "ar", "zh"]  # XNLI's languages that MLQA's scoring knows (not fr)
RECIPE = ["technique=fine_tune", "train.epochs=2", "train.batch_size=16", "train.learning_rate=5e-5",
          "train.warmup=0.1", "train.eval_steps=50", "train.max_length=128"]


def baselines(rows, lang) -> dict:
    tokens = tokenizer_for("mlqa", lang)

    def scored(answer_of):
        pairs = [exact_and_f1(answer_of(r["context"]), r["answers"]["text"], tokens) for r in rows]
        return {"exact_match": round(sum(p[0] for p in pairs) / len(rows), 4),
                "f1": round(sum(p[1] for p in pairs) / len(rows), 4)}

    return {"empty": scored(lambda c: ""), "first_sentence": scored(lambda c: c),
            "first_two_words": scored(lambda c: c[:2] if lang == "zh" else " ".join(c.split()[:2]))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    model, xnli = args.shared / "models" / "multilingual-e5-small-xnli", args.shared / "data" / "xnli"
    data = span_task(xnli, Path(tempfile.mkdtemp(prefix="span-questions-")), SIZES, LANGS)
    trivial = {lang: baselines([json.loads(line) for line in open(data / f"test.{lang}.jsonl", encoding="utf-8")],
                               lang) for lang in LANGS}
    result = {"sizes": SIZES, "recipe": RECIPE, "baselines": trivial,
              "xlt": task_run(model, data, "mlqa", LANGS, RECIPE, ("exact_match", "f1"))}
    (REPO / "benchmarks" / "results_span_questions.json").write_text(json.dumps(result, indent=2) + "\n")
    for lang in LANGS:
        best = max(trivial[lang].values(), key=lambda b: b["f1"])
        x = result["xlt"][lang]
        print(f"{lang}: F1 {x['f1']:.3f} EM {x['exact_match']:.3f} (best trivial F1 {best['f1']:.3f})")


if __name__ == "__main__":
    main()
