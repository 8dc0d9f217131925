"""Token-task data in xlt's local layouts, and the session's runs of a token task shared by the
assertions that read them (fixtures, imported by the tests that use them)."""
import json
import random
from pathlib import Path

import pytest

NAMES, PLACES = ["Anna", "Marco", "Lena", "Omar", "Yuki"], ["Paris", "Berlin", "Madrid", "Cairo", "Tokyo"]
WORDS = ["the", "a", "went", "to", "saw", "and", "with", "house", "city", "big", "small", "today"]
# A UD sentence with a multi-word token (`zum`: zu + dem), which a reader leaves out.
CONLLU = """# sent_id = 1
1\tAnna\tAnna\tPROPN\t_\t_\t2\tnsubj\t_\t_
2-3\tzum\t_\t_\t_\t_\t_\t_\t_\t_
2\tzu\tzu\tADP\t_\t_\t0\troot\t_\t_
3\tdem\tder\tDET\t_\t_\t4\tdet\t_\t_
4\tHaus\tHaus\tNOUN\t_\t_\t2\tobj\t_\t_

"""

TOKEN_LEARNS = ["model=tiny", "train.learning_rate=5e-3", "train.epochs=6", "train.batch_size=16",
                "tracking.aim.sync=false"]


def tagged_sentence(rng: random.Random) -> dict:
    """A rule-tagged sentence: names are PER, a capitalised word after `in` is LOC."""
    tokens, tags = [], []
    for _ in range(rng.randint(4, 12)):
        r = rng.random()
        if r < 0.15:
            tokens.append(rng.choice(NAMES)), tags.append("B-PER")
        elif r < 0.3:
            tokens += ["in", rng.choice(PLACES)]
            tags += ["O", "B-LOC"]
        else:
            tokens.append(rng.choice(WORDS)), tags.append("O")
    return {"tokens": tokens, "ner_tags": tags}


def write_ner(directory: Path, langs=("en", "de"), sizes=(("train", 160), ("validation", 40), ("test", 40))) -> Path:
    rng = random.Random(0)
    directory.mkdir(parents=True, exist_ok=True)
    for split, n in sizes:
        for lang in langs:
            with open(directory / f"{split}.{lang}.jsonl", "w") as f:
                for _ in range(n):
                    f.write(json.dumps(tagged_sentence(rng)) + "\n")
    return directory


@pytest.fixture(scope="session")
def ner_dir(tmp_path_factory) -> Path:
    return write_ner(tmp_path_factory.mktemp("ner"))


@pytest.fixture(scope="session")
def ner_runs(tmp_path_factory, ner_dir):
    """Fine-tuning and LoRA on the NER files, zero-shot, in this process: (output dir, {technique: result})."""
    from jobs import run_job

    out = tmp_path_factory.mktemp("ner_runs")
    results = {t: run_job(out, "task=panx", "data=jsonl", f"data.dir={ner_dir}", "languages.eval=[en,de]",
                          f"technique={t}", *TOKEN_LEARNS, "technique.lora.rank=8" if t == "lora" else "train.seed=42")
               for t in ("fine_tune", "lora")}
    return out, results
