"""The report layer: what runs found, read back from any MLflow store.

`results` (tidy tables: `load_results`, `load_curves`), `findings` (sentences computed from
the numbers), `charts` (PNG), `render` (report.md, report.html) and `publish` (`xlt report`:
a report written, and a sweep's parent MLflow run)."""
