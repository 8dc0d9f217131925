#!/bin/sh
# The site's pictures, regenerated from a smoke sweep (never pasted by hand):
#   sh docs/pictures.sh     (about a minute on two cores; writes docs/assets/)
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
.venv/bin/python run.py -m experiment=smoke output_dir="$out" tracking.aim.sync=false >/dev/null
.venv/bin/xlt report --mlflow-tracking-uri "$out/mlflow.db" --experiment smoke --out "$out/report" >/dev/null
cp "$out/report/validation_by_step.png" docs/assets/
rm -rf "$out"
echo "docs/assets/validation_by_step.png"
