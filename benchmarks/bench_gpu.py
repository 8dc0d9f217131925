"""GPU benchmark: xlt against the seed's way on bert-base-multilingual-cased's architecture.

    python benchmarks/bench_gpu.py [--shared ../shared] [--case NAME ...] [--out FILE]
    python benchmarks/bench_gpu.py --smoke      # the same code path on a tiny model, CPU is fine

The model is mBERT's exact shape (12 layers, hidden 768, 12 heads, 119,547-id embedding
table), randomly initialised: speed does not depend on the weights. Its hub tokenizer cannot
be downloaded here, so both sides use the XLM-R SentencePiece pieces of the shared
multilingual-e5 tokenizer, which split XNLI text much as mBERT's WordPiece does. Data: the
real XNLI files in shared/data. Each side runs in its own process (sides.py); the seed trains
in fp32 at padding 512, xlt with its defaults (bf16 autocast where the GPU has it).

Reported per side: training samples/s, real (non-padding) tokens/s and MFU, the model FLOP/s
of the useful tokens (mfu.py) over the GPU's peak dense bf16 FLOP/s.
"""
import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from mfu import peak_tflops, train_flops
from sides import REPO, seed_way, xlt_way

MBERT = dict(vocab_size=119547, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
             intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
TINY = dict(vocab_size=44075, hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
            intermediate_size=256, max_position_embeddings=512, type_vocab_size=2)
LANGUAGES = 6  # en de fr es ar zh: xlt's default list and the seed's
XLT_MAX_LENGTH, SEED_MAX_LENGTH = 128, 512  # xlt truncates at train.max_length; the seed pads to 512
NO_EVAL = 10 ** 6  # eval_steps past the last step: training throughput without evaluation

CASES = {
    # Training throughput on all 9,000 English rows, and test evaluation on every full test set.
    "fine_tune": dict(train=9000, eval=20, test=5010, epochs=2, batch=32, eval_steps=NO_EVAL, lr=5e-5),
    # End to end; the seed re-runs the frozen encoder every step and evaluates every 500 steps.
    "feature_extraction": dict(train=9000, eval=500, test=1000, epochs=3, batch=32, eval_steps=500, lr=1e-3),
    # xlt alone, batches large enough to keep an H100 busy: how close to peak a job gets.
    "fine_tune_batch256": dict(train=9000, eval=20, test=20, epochs=3, batch=256, eval_steps=NO_EVAL, lr=1e-4),
}
SMOKE = dict(train=64, eval=8, test=16, epochs=1, batch=16, eval_steps=2)
TECHNIQUE = {"fine_tune": "fine_tune", "fine_tune_batch256": "fine_tune", "feature_extraction": "feature_extraction"}
SEED_TOO = {"fine_tune", "feature_extraction"}
COMPARED = {"fine_tune": ["train_samples_per_second", "train_tokens_per_second", "test_runtime_s", "wall_s"],
            "feature_extraction": ["wall_s"],
            "fine_tune_batch256": ["train_samples_per_second", "train_tokens_per_second"]}
HIGHER_IS_BETTER = {"train_samples_per_second", "train_tokens_per_second"}


def random_model(shape: dict, tokenizer_dir: Path, out: Path) -> Path:
    """A randomly initialised BERT classifier of this shape, saved with the shared tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    assert len(tokenizer) <= shape["vocab_size"], "every token id needs a row in the embedding table"
    torch.manual_seed(0)
    config = BertConfig(**shape, num_labels=3, pad_token_id=tokenizer.pad_token_id)
    BertForSequenceClassification(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def trimmed_data(xnli: Path, n_train: int, out: Path) -> Path:
    """XNLI with the first n English training rows: both sides then train on the same rows."""
    if out.is_dir():  # made for an earlier case
        return out
    out.mkdir(parents=True)
    for path in xnli.glob("*.jsonl"):
        if path.name == "train.en.jsonl":
            with open(path, encoding="utf-8") as f:
                (out / path.name).write_text("".join(line for _, line in zip(range(n_train), f)), encoding="utf-8")
        else:
            (out / path.name).symlink_to(path.resolve())
    return out


def train_lengths(model_dir: Path, data_dir: Path, max_length: int, strip: bool) -> list:
    """Token counts of the training pairs as a side tokenizes them (xlt strips, the seed does not)."""
    from transformers import AutoTokenizer

    from xlt.config import task_preset
    from xlt.data.jsonl import read_jsonl

    rows = read_jsonl(data_dir / "train.en.jsonl", task_preset("xnli"))
    clean = (lambda texts: [t.strip() for t in texts]) if strip else list
    enc = AutoTokenizer.from_pretrained(model_dir)(clean(rows["premise"]), clean(rows["hypothesis"]),
                                                   truncation=True, max_length=max_length)
    return [len(ids) for ids in enc["input_ids"]]


def add_rates(result: dict, config, lengths: list, case: dict, peak, padded_to=None) -> None:
    """Tokens/s and MFU from the side's training runtime; with `padded_to`, the padded work too."""
    runtime, epochs = result["train_runtime_s"], case["epochs"]
    result["train_tokens_per_second"] = sum(lengths) * epochs / runtime
    result["test_samples_per_second"] = LANGUAGES * case["test"] / result["test_runtime_s"]
    if peak:
        result["mfu"] = train_flops(config, lengths) * epochs / runtime / (peak * 1e12)
        if padded_to:  # what the GPU actually computes, padding included
            result["flops_utilisation_with_padding"] = (
                train_flops(config, [padded_to] * len(lengths)) * epochs / runtime / (peak * 1e12))


def machine() -> dict:
    import torch
    import transformers

    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else None
    return {"gpu": gpu, "cpu_cores": os.cpu_count(), "platform": platform.platform(),
            "torch": torch.__version__, "transformers": transformers.__version__}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--out", type=Path, help="default: benchmarks/results_gpu.json (--smoke: a temporary file)")
    p.add_argument("--case", action="append", choices=sorted(CASES), help="default: all")
    p.add_argument("--smoke", action="store_true", help="tiny model and sizes: checks the script, measures nothing")
    p.add_argument("--peak-tflops", type=float, help="the GPU's dense bf16 peak, if its name is not in mfu.py")
    a = p.parse_args()
    from transformers import BertConfig

    shared, work = a.shared.resolve(), Path(tempfile.mkdtemp(prefix="xlt-bench-gpu-"))
    out = a.out or (work / "results.json" if a.smoke else REPO / "benchmarks" / "results_gpu.json")
    info = machine()
    peak = a.peak_tflops or (peak_tflops(info["gpu"]) if info["gpu"] else None)
    if info["gpu"] and not peak:
        print(f"no peak FLOP/s known for {info['gpu']}: pass --peak-tflops to get MFU")
    shape = TINY if a.smoke else MBERT
    config = BertConfig(**shape)
    model = random_model(shape, shared / "models/multilingual-e5-small-xnli", work / "model")
    results = {"machine": {**info, "peak_bf16_tflops": peak}, "model": shape, "smoke": a.smoke}
    print(json.dumps(results), flush=True)

    for name in a.case or list(CASES):
        case = {**CASES[name], **(SMOKE if a.smoke else {})}
        technique = TECHNIQUE[name]
        data = trimmed_data(shared / "data/xnli", case["train"], work / f"data{case['train']}")
        sides = {"xlt": xlt_way(model, data, technique, case)}
        if technique == "fine_tune":
            add_rates(sides["xlt"], config, train_lengths(model, data, XLT_MAX_LENGTH, strip=True), case, peak)
        if name in SEED_TOO:
            sides["seed"] = seed = seed_way(model, data, technique, case)
            if technique == "fine_tune":
                add_rates(seed, config, train_lengths(model, data, SEED_MAX_LENGTH, strip=False), case, peak,
                          padded_to=SEED_MAX_LENGTH)
        results[name] = {"case": case, **sides}

        print(f"\n{name} {case}", flush=True)
        print(f"{'':32}{'seed':>12}{'xlt':>12}{'ratio':>8}")
        for key in COMPARED[name]:
            s, x = sides.get("seed", {}).get(key), sides["xlt"][key]
            ratio = "" if s is None else f"{(x / s if key in HIGHER_IS_BETTER else s / x):7.1f}x"
            print(f"{key:32}{'-' if s is None else f'{s:.2f}':>12}{x:12.2f}{ratio:>8}")
        for key in ("mfu", "flops_utilisation_with_padding", "test_en_accuracy", "test_target_mean_accuracy"):
            if any(key in side for side in sides.values()):
                values = [sides.get(side, {}).get(key) for side in ("seed", "xlt")]
                print(f"{key:32}" + "".join(f"{'-' if v is None else f'{v:.3f}':>12}" for v in values))
        out.write_text(json.dumps(results, indent=2))  # after every case: a cut-off run keeps its results
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
