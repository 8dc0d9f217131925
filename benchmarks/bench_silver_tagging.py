"""Token classification on the real encoder, on silver tags: does a tagger trained on English learn and
transfer above the majority baseline?

    python benchmarks/bench_silver_tagging.py [--shared ../shared]  # writes benchmarks/results_silver_tagging.json

No NER or POS corpus reaches this machine, so the tags are made by rule from real XNLI sentences
(shared/data/xnli), in UPOS names so that `task=udpos` reads them: PUNCT (a punctuation token), NUM (a
token with a digit), PROPN (a capitalised token that does not start the sentence), X (any other).
They are surface rules, not linguistics (German capitalises every noun, so its nouns are PROPN here):
the benchmark measures that xlt's token pipeline learns a tagging from English and applies it to
other languages, not POS tagging. Chinese is left out (no spaces: its sentences would be one token).

The baseline: every token X (the majority tag), scored by the same word accuracy and seqeval F1.
xlt's side: `python run.py task=udpos data=jsonl`, fine-tuning multilingual-e5-small, as a user runs it.
"""
import argparse
import json
import re
import tempfile
from pathlib import Path

from sides import REPO, task_run

TRAIN, EVAL, TEST = 2000, 200, 500  # English training sentences; validation and test sentences per language
TARGETS = ["de", "fr", "es", "ar"]
RECIPE = ["technique=fine_tune", "train.epochs=2", "train.batch_size=16", "train.learning_rate=5e-5",
          "train.warmup=0.1", "train.eval_steps=100", "train.max_length=64"]
TOKEN = re.compile(r"\w+|[^\w\s]")


def silver_tags(tokens):
    def tag(i, token):
        if not any(ch.isalnum() for ch in token):
            return "PUNCT"
        if any(ch.isdigit() for ch in token):
            return "NUM"
        return "PROPN" if i > 0 and token[0].isupper() else "X"

    return [tag(i, token) for i, token in enumerate(tokens)]


def sentences(xnli: Path, split: str, lang: str, n: int):
    """The first `n` distinct sentences (premises and hypotheses) of a split, tokenized and tagged."""
    seen, rows = set(), []
    for line in open(xnli / f"{split}.{lang}.jsonl", encoding="utf-8"):
        row = json.loads(line)
        for text in (row["premise"], row["hypothesis"]):
            tokens = TOKEN.findall(text)
            if text not in seen and 3 <= len(tokens) <= 40:
                seen.add(text)
                rows.append({"tokens": tokens, "pos_tags": silver_tags(tokens)})
        if len(rows) >= n:
            return rows[:n]
    return rows


def write_data(xnli: Path, into: Path) -> dict:
    into.mkdir(parents=True, exist_ok=True)
    splits = {("train", "en"): sentences(xnli, "train", "en", TRAIN)}
    for lang in ["en", *TARGETS]:
        # Validation and test from XNLI's own splits: no sentence is in both, nor in training.
        splits[("validation", lang)] = sentences(xnli, "validation", lang, EVAL)
        splits[("test", lang)] = sentences(xnli, "test", lang, TEST)
    for (split, lang), rows in splits.items():
        (into / f"{split}.{lang}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return splits


def majority_baseline(rows) -> dict:
    import warnings

    from seqeval.metrics import f1_score

    warnings.filterwarnings("ignore", message=".* seems not to be NE tag")  # UPOS tags have no B-/I-: as XTREME

    gold = [r["pos_tags"] for r in rows]
    guess = [["X"] * len(tags) for tags in gold]
    words = [t for tags in gold for t in tags]
    return {"accuracy": sum(t == "X" for t in words) / len(words), "f1": f1_score(gold, guess),
            "tags": {t: words.count(t) for t in ("PUNCT", "NUM", "PROPN", "X")}}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = parser.parse_args()
    model, xnli = args.shared / "models" / "multilingual-e5-small-xnli", args.shared / "data" / "xnli"
    data = Path(tempfile.mkdtemp(prefix="silver-tags-"))
    splits = write_data(xnli, data)
    baseline = {lang: majority_baseline(splits[("test", lang)]) for lang in ["en", *TARGETS]}
    result = {"sizes": {"train_en": TRAIN, "validation": EVAL, "test": TEST}, "recipe": RECIPE,
              "baseline_all_X": baseline,
              "xlt": task_run(model, data, "udpos", ["en", *TARGETS], RECIPE, ("accuracy", "f1"))}
    (REPO / "benchmarks" / "results_silver_tagging.json").write_text(json.dumps(result, indent=2) + "\n")
    for lang in ["en", *TARGETS]:
        b, x = baseline[lang], result["xlt"][lang]
        print(f"{lang}: accuracy {x['accuracy']:.3f} (all-X {b['accuracy']:.3f}), "
              f"F1 {x['f1']:.3f} (all-X {b['f1']:.3f})")


if __name__ == "__main__":
    main()
