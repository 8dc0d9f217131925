#!/bin/sh
# The site's pictures, regenerated (never pasted by hand):
#   sh docs/pictures.sh            the report chart, from a smoke sweep (about a minute on two cores)
#   sh docs/pictures.sh OUTPUT_DIR the MLflow and Aim views of a sweep's store too (OUTPUT_DIR/mlflow.db,
#                                  OUTPUT_DIR/aim), through headless Chromium (apt-get install chromium)
set -eu
cd "$(dirname "$0")/.."
out=$(mktemp -d)
.venv/bin/python run.py -m experiment=smoke output_dir="$out" tracking.aim.sync=false >/dev/null
.venv/bin/xlt report --mlflow-tracking-uri "$out/mlflow.db" --experiment smoke --out "$out/report" >/dev/null
cp "$out/report/validation_by_step.png" docs/assets/
rm -rf "$out"
[ $# -eq 1 ] || exit 0
store=$(cd "$1" && pwd)
shot() { chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1400,$2 \
  --virtual-time-budget=15000 --screenshot="docs/assets/$1" "$3" 2>/dev/null; }
.venv/bin/mlflow ui --backend-store-uri "sqlite:///$store/mlflow.db" --host 127.0.0.1 --port 5123 >/dev/null 2>&1 &
mlflow_pid=$!
.venv/bin/xlt aim-up --repo "$store/aim" --host 127.0.0.1 --port 43811 >/dev/null 2>&1 &
aim_pid=$!
trap 'kill $mlflow_pid $aim_pid 2>/dev/null' EXIT
sleep 15
shot mlflow_runs.png 700 "http://127.0.0.1:5123/#/experiments/1/runs?workflowType=machine_learning"
shot aim_runs.png 800 "http://127.0.0.1:43811/runs"
echo "docs/assets/: validation_by_step.png mlflow_runs.png aim_runs.png"
