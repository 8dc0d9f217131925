"""The report's charts (PNG, matplotlib), drawn as the seed post reads them in Aim:
colour = model, line style = technique, one panel per language."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import pandas as pd

from xlt.core.metrics import TARGET_MEAN, metric_name

STYLES = ["-", "--", ":", "-."]
MIN_SPAN = 0.10  # the narrowest accuracy range a heatmap colours over


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _legend_keys(runs: pd.DataFrame):
    """A colour per technique (what a reader compares first), a line style per model."""
    colours = {t: f"C{i % 10}" for i, t in enumerate(sorted(runs["technique"].unique()))}
    styles = {m: STYLES[i % len(STYLES)] for i, m in enumerate(sorted(runs["model"].unique()))}
    return colours, styles


def curves_by_language(runs: pd.DataFrame, curves: pd.DataFrame, langs: List[str], x: str, path: Path) -> Path:
    """Validation accuracy per language (and the target mean, its own panel) against `x`: step or seconds."""
    plt = _pyplot()
    panels = langs + [TARGET_MEAN]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    colours, styles = _legend_keys(runs)
    for ax, lang in zip(axes.flat, panels):
        name = metric_name("validation", "accuracy", lang)
        for run in runs.itertuples():
            points = curves[(curves["run_id"] == run.run_id) & (curves["metric"] == name)]
            if not points.empty:
                ax.plot(points[x], points["value"], color=colours[run.technique], linestyle=styles[run.model],
                        label=f"{run.model} {run.technique}")
        ax.set_title("mean over target languages" if lang == TARGET_MEAN else lang)
        ax.set_xlabel("step" if x == "step" else "seconds since the run started")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    axes[0][0].set_ylabel("validation accuracy")
    _legend(fig, axes)
    return _save(fig, path)


def training_loss(runs: pd.DataFrame, curves: pd.DataFrame, path: Path) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    colours, styles = _legend_keys(runs)
    for run in runs.itertuples():
        points = curves[(curves["run_id"] == run.run_id) & (curves["metric"] == "train/loss")]
        if not points.empty:
            ax.plot(points["step"], points["value"], color=colours[run.technique], linestyle=styles[run.model],
                    label=f"{run.model} {run.technique}")
    ax.set_xlabel("step"), ax.set_ylabel("training loss"), ax.grid(alpha=0.3)
    _legend(fig, [[ax]])
    return _save(fig, path)


def heatmaps(table: Dict[str, pd.DataFrame], path: Path) -> Path:
    """Model x language test accuracy, one heatmap per technique (`table`: technique -> frame)."""
    plt = _pyplot()
    models = sorted(set().union(*(frame.index for frame in table.values())))
    table = {t: frame.reindex(models) for t, frame in table.items()}  # rows align: one set of labels
    label_in = 0.08 * max(len(str(m)) for m in models)  # the model names' width, left of the first map
    fig, axes = plt.subplots(1, len(table), sharey=True, layout="constrained", squeeze=False,
                             figsize=(1.5 + label_in + 1.1 * max(len(t.columns) for t in table.values()) * len(table),
                                      1.5 + 0.6 * len(models)))
    values = pd.concat(list(table.values()))
    low, high = values.min().min(), values.max().max()
    if high - low < MIN_SPAN:  # one colour scale for all, never so narrow that one example looks like a chasm
        low, high = (low + high - MIN_SPAN) / 2, (low + high + MIN_SPAN) / 2
    for ax, (technique, frame) in zip(axes[0], table.items()):
        image = ax.imshow(frame.to_numpy(dtype=float), cmap="viridis", vmin=low, vmax=high, aspect="auto")
        ax.set_xticks(range(len(frame.columns)), frame.columns)
        ax.set_yticks(range(len(frame.index)), frame.index)
        ax.tick_params(axis="y", labelleft=ax is axes[0][0])
        for (i, j), value in pd.DataFrame(frame.to_numpy()).stack().dropna().items():  # no text where no run
            ax.text(j, i, f"{value:.2f}", ha="center", va="center", color="w" if value < (low + high) / 2 else "k",
                    fontsize=8)
        ax.set_title(technique)
    fig.colorbar(image, ax=list(axes[0]), label="test accuracy")
    return _save(fig, path)


def by_hyperparameter(scores: pd.DataFrame, field: str, path: Path) -> Path:
    """Mean target-language test accuracy against one swept field, per model and technique."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colours, styles = _legend_keys(scores)
    for (model, technique), group in scores.groupby(["model", "technique"]):
        means = group.groupby(field)["score"].mean().sort_index()  # numbers on a numeric axis, in order
        xs = means.index if pd.api.types.is_numeric_dtype(means.index) else [str(v) for v in means.index]
        ax.plot(xs, means.to_numpy(), marker="o", color=colours[technique], linestyle=styles[model],
                label=f"{model} {technique}")
    ax.set_xlabel(field), ax.set_ylabel("mean target-language test accuracy"), ax.grid(alpha=0.3)
    _legend(fig, [[ax]])
    return _save(fig, path)


def _legend(fig, axes) -> None:
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.tight_layout(rect=(0, 0.08 if unique else 0, 1, 1))
    if unique:
        fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(4, len(unique)), frameon=False)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
