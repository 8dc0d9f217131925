"""The report's charts (PNG, matplotlib): a colour per configuration (technique and swept values),
a line style per model, one panel per language; chance drawn on every accuracy axis (F1 has none), an error bar
(the 95% interval) on every point, and y-axes never narrower than the intervals they show."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import pandas as pd

from xlt.core.metrics import TARGET_MEAN, metric_name

STYLES = ["-", "--", ":", "-."]
MIN_SPAN = 0.10  # the narrowest score range a heatmap colours over


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    return plt


def _legend_keys(runs: pd.DataFrame, fields: List[str] = ()):
    """A colour per configuration (technique and the swept fields' values: what a reader compares),
    a line style per model."""
    keys = sorted({_key(run, fields) for _, run in runs.iterrows()})
    colours = {k: f"C{i % 10}" for i, k in enumerate(keys)}
    styles = {m: STYLES[i % len(STYLES)] for i, m in enumerate(sorted(runs["model"].unique()))}
    return colours, styles


def _key(run, fields: List[str]) -> tuple:
    return (run.technique, *[str(run[f]) for f in fields])


def _label(run, fields: List[str]) -> str:
    return " ".join([run.model, run.technique, *[f"{f.rsplit('.', 1)[-1]}={run[f]}" for f in fields]])


def _series(curves: pd.DataFrame, x: str) -> Dict[tuple, np.ndarray]:
    """(run id, metric) -> its points as rows of (x, value): split once, not filtered per run and panel."""
    ordered = curves.sort_values(["run_id", "metric"], kind="stable")
    keys = list(zip(ordered["run_id"], ordered["metric"]))
    starts = [i for i in range(len(keys)) if i == 0 or keys[i] != keys[i - 1]]
    points = np.split(ordered[[x, "value"]].to_numpy(dtype=float), starts[1:])
    return {keys[i]: part for i, part in zip(starts, points)}


def _looks(runs: pd.DataFrame, fields: List[str]) -> List[tuple]:
    """(run id, label, colour, line style) of each run, in the table's order."""
    colours, styles = _legend_keys(runs, fields)
    return [(run.run_id, _label(run, fields), colours[_key(run, fields)], styles[run.model])
            for _, run in runs.iterrows()]


def _draw_runs(ax, looks: List[tuple], series: Dict[tuple, np.ndarray], name: str) -> None:
    """Each run's `name`: the runs of one label (their seeds) as one line collection, a legend entry
    each; one artist per label, not per run, keeps a 1,000-run chart quick to draw."""
    from matplotlib.collections import LineCollection

    groups: Dict[str, list] = {}
    for run_id, label, colour, style in looks:
        if (run_id, name) in series:
            groups.setdefault(label, [colour, style, []])[2].append(series[run_id, name])
    for label, (colour, style, lines) in groups.items():
        ax.add_collection(LineCollection(lines, colors=colour, linestyles=style, label=label))
    ax.autoscale_view()


def chance_line(ax, chance: Optional[float]) -> None:
    if chance:
        ax.axhline(chance, color="0.4", linestyle=(0, (1, 2)), linewidth=1, label=f"chance {chance:.3f}")


def curves_by_language(runs: pd.DataFrame, curves: pd.DataFrame, langs: List[str], x: str, path: Path,
                       fields: List[str] = (), chance: Optional[float] = None) -> Path:
    """Validation scores per language (and the target mean, its own panel) against `x`: step or
    seconds; the metric is the one `curves` holds (`validation/<lang>/<metric>`)."""
    return _save(draw_curves(runs, curves, langs, x, list(fields), chance), path)


def draw_curves(runs: pd.DataFrame, curves: pd.DataFrame, langs: List[str], x: str, fields: List[str],
                chance: Optional[float]):
    plt = _pyplot()
    validation = curves.loc[curves["metric"].str.startswith("validation/"), "metric"]
    metric = validation.iloc[0].rsplit("/", 1)[-1] if len(validation) else "accuracy"
    panels = langs + [TARGET_MEAN]
    cols = min(4, len(panels))
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3 * rows), squeeze=False, sharey=True)
    series, looks = _series(curves, x), _looks(runs, fields)
    for ax, lang in zip(axes.flat, panels):
        _draw_runs(ax, looks, series, metric_name("validation", metric, lang))
        chance_line(ax, chance)
        ax.set_title("mean over target languages" if lang == TARGET_MEAN else lang)
        ax.set_xlabel("step" if x == "step" else "seconds since the run started")
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    values = curves.loc[curves["metric"].str.startswith("validation/"), "value"]
    if not values.empty:  # one range for every panel (shared), never narrower than MIN_SPAN around chance and the data
        low, high = min(values.min(), chance or 1.0), max(values.max(), chance or 0.0)
        middle, half = (low + high) / 2, max(high - low, MIN_SPAN) / 2 + MARGIN
        axes[0][0].set_ylim(max(0.0, middle - half), min(1.0, middle + half))
    axes[0][0].set_ylabel(f"validation {metric}")
    _legend(fig, axes)
    return fig


def training_loss(runs: pd.DataFrame, curves: pd.DataFrame, path: Path, fields: List[str] = ()) -> Path:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4))
    fields = list(fields)
    _draw_runs(ax, _looks(runs, fields), _series(curves, "step"), "train/loss")
    ax.set_xlabel("step"), ax.set_ylabel("training loss"), ax.grid(alpha=0.3)
    _legend(fig, [[ax]])
    return _save(fig, path)


def heatmaps(table: Dict[str, pd.DataFrame], path: Path, metric: str = "accuracy") -> Path:
    """Model x language test `metric`, one heatmap per technique (`table`: technique -> frame)."""
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
    fig.colorbar(image, ax=list(axes[0]), label=f"test {metric}")
    return _save(fig, path)


def by_hyperparameter(points: pd.DataFrame, field: str, path: Path, chance: Optional[float] = None,
                      metric: str = "accuracy") -> Path:
    """Mean target-language test `metric` against one swept field, per model and technique."""
    return _save(draw_by_field(points, field, chance, metric), path)


def draw_by_field(points: pd.DataFrame, field: str, chance: Optional[float], metric: str = "accuracy"):
    """`points`: model, technique, `field`, mean, low, high (the 95% interval; NaN where unknown)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    colours, styles = _legend_keys(points)
    for (model, technique), group in points.groupby(["model", "technique"]):
        group = group.sort_values(field)  # numbers on a numeric axis, in order
        xs = group[field] if pd.api.types.is_numeric_dtype(group[field]) else group[field].astype(str)
        errors = [(group["mean"] - group["low"]).fillna(0).clip(lower=0),
                  (group["high"] - group["mean"]).fillna(0).clip(lower=0)]
        ax.errorbar(xs, group["mean"], yerr=errors, marker="o", capsize=3, color=colours[(technique,)],
                    linestyle=styles[model], label=f"{model} {technique}")
    chance_line(ax, chance)
    _honest_ylim(ax, points, chance)
    ax.set_xlabel(field), ax.set_ylabel(f"mean target-language test {metric}"), ax.grid(alpha=0.3)
    _legend(fig, [[ax]])
    return fig


MARGIN = 0.02


def _honest_ylim(ax, points: pd.DataFrame, chance: Optional[float]) -> None:
    """A y-range holding every interval and chance, with a margin: never zoomed into the noise."""
    low = points[["low", "mean"]].min().min()
    high = points[["high", "mean"]].max().max()
    if chance:
        low = min(low, chance)
    ax.set_ylim(max(0.0, low - MARGIN), min(1.0, high + MARGIN))


def _legend(fig, axes) -> None:
    handles, labels = axes[0][0].get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    # Room below the panels for the legend's rows (about a fifth of an inch each), never over them.
    rows = -(-len(unique) // 4)
    fig.tight_layout(rect=(0, min(0.6, (0.2 * rows + 0.15) / fig.get_figheight()) if unique else 0, 1, 1))
    if unique:
        fig.legend(unique.values(), unique.keys(), loc="lower center", ncol=min(4, len(unique)), frameon=False)


def _save(fig, path: Path) -> Path:
    fig.savefig(path, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
