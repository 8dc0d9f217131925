"""What an xnli6 sweep fetches and stores of facebook/xnli: every split of each language
(`load_dataset(repo, lang, split=...)`, xlt before issue 11) against the files of the splits
it reads (xlt's pinned per-split files, xlt/data/hub.py).

The repo is a local copy in facebook/xnli's layout (tests/standins/dataset_repos.py): real XNLI validation
and test rows, and train files of the real split's 392,702 rows per language, made of the
9,000 English training rows at hand, stored without dictionary encoding, as distinct text is.

    python benchmarks/bench_hub_data.py   # writes benchmarks/results_hub_data.json
"""
import json
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]

from standins.dataset_repos import LANGS, xnli_mirror  # noqa: E402

XNLI = REPO.parent / "shared" / "data" / "xnli"
TRAIN_ROWS = 392_702


def size(paths) -> int:
    return sum(p.stat().st_size for p in paths if p.is_file())


def main() -> None:
    import datasets
    import pyarrow.parquet as pq

    from xlt.data.hub import dataset_paths, pin_dataset

    datasets.disable_progress_bars()
    needs = [("en", "train")] + [(lang, split) for lang in LANGS for split in ("validation", "test")]
    with tempfile.TemporaryDirectory() as tmp:
        mirror = xnli_mirror(Path(tmp) / "xnli", XNLI, train_rows=TRAIN_ROWS)
        repo_size = size(mirror.rglob("*.parquet"))

        start = time.perf_counter()  # before: each language's config, all its splits prepared
        cache = Path(tmp) / "datasets-cache"
        fetched = set()
        for lang, split in needs:
            builder = datasets.load_dataset_builder(str(mirror), lang, cache_dir=str(cache))
            fetched |= {Path(f) for files in builder.config.data_files.values() for f in files}
            datasets.load_dataset(str(mirror), lang, split=split, cache_dir=str(cache))
        before = {"fetched_mb": size(fetched) / 1e6, "prepared_mb": size(cache.rglob("*")) / 1e6,
                  "files": len(fetched), "seconds": time.perf_counter() - start}

        start = time.perf_counter()  # after: the pinned files of the splits read, read in place
        pin = pin_dataset(str(mirror), "main", needs, "{lang}/{split}-*")
        files = {p for lang, split in needs for p in dataset_paths(pin, lang, split)}
        rows = sum(pq.read_table(p).num_rows for p in files)  # as a job reads them (xlt/data/splits.py)
        after = {"fetched_mb": size(files) / 1e6, "prepared_mb": 0.0, "files": len(files),
                 "seconds": time.perf_counter() - start, "rows_read": rows}
    result = {"languages": list(LANGS), "train_rows_per_language": TRAIN_ROWS, "repo_parquet_mb": repo_size / 1e6,
              "before": before, "after": after}
    print(json.dumps(result, indent=2))
    (REPO / "benchmarks" / "results_hub_data.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
