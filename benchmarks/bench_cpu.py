"""CPU benchmark: xlt against the seed's way, same model, data and machine, one invocation.

    python benchmarks/bench_cpu.py [--shared ../shared] [--case NAME ...] [--out FILE]

Model: the real multilingual-e5-small in shared/models; data: real XNLI in shared/data.
Sizes are small so the whole run takes minutes on 2 cores; each side runs in its own
process from a cold start (imports, tokenization and caches included; sides.py).
"""
import argparse
import json
import statistics
import sys
from pathlib import Path

from sides import REPO, seed_way, timed, xlt_way

CASES = {
    # End to end: the seed re-runs the frozen encoder every step, epoch and evaluation.
    "feature_extraction": dict(train=160, eval=20, test=20, epochs=3, batch=8, eval_steps=20, lr=1e-3),
    # Training throughput and test-set evaluation time of full fine-tuning.
    "fine_tune": dict(train=48, eval=20, test=40, epochs=1, batch=8, eval_steps=1000, lr=5e-5),
    # The first case, 2.5x the training rows: xlt's fixed start-up weighs less (about 11 min).
    "feature_extraction_large": dict(train=400, eval=20, test=20, epochs=3, batch=8, eval_steps=50, lr=1e-3),
}
DEFAULT_CASES = ["feature_extraction", "fine_tune"]
# What each case compares: xlt's feature extraction trains and evaluates a head on cached
# features, so its per-step throughput and eval time are not comparable with the seed's.
COMPARED = {"feature_extraction": ["wall_s"], "feature_extraction_large": ["wall_s"],
            "fine_tune": ["wall_s", "train_samples_per_second", "test_runtime_s"]}


def e5_sides(shared, technique, c):
    model, data = shared / "models/multilingual-e5-small-xnli", shared / "data/xnli"
    return seed_way(model, data, technique, c), xlt_way(model, data, technique, c)


def help_seconds(repeat=5):
    return statistics.median(timed([sys.executable, "run.py", "--help"])[0] for _ in range(repeat))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results_cpu.json")
    p.add_argument("--case", action="append", choices=sorted(CASES), help=f"default: {' '.join(DEFAULT_CASES)}")
    a = p.parse_args()
    shared = a.shared.resolve()
    results = {"run.py --help (s)": help_seconds()}
    print(f"run.py --help: {results['run.py --help (s)']:.2f} s", flush=True)
    for name in a.case or DEFAULT_CASES:
        case, technique = CASES[name], name.replace("_large", "")
        seed, xlt = e5_sides(shared, technique, case)
        results[name] = {"case": case, "seed": seed, "xlt": xlt}
        print(f"\n{name} {case}", flush=True)
        print(f"{'':28}{'seed':>10}{'xlt':>10}{'ratio':>8}")
        for key in COMPARED[name]:
            ratio = seed[key] / xlt[key] if key != "train_samples_per_second" else xlt[key] / seed[key]
            print(f"{key:28}{seed[key]:10.2f}{xlt[key]:10.2f}{ratio:7.1f}x")
        for key in ("test_en_accuracy", "test_target_mean_accuracy"):
            print(f"{key:28}{seed[key]:10.3f}{xlt[key]:10.3f}")
    a.out.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
