#!/bin/sh
# Set up xlt in ./.venv, or check that it is set up: PyTorch, then xlt with its test tools.
# Safe to run again: what is installed stays, so a second run takes about a second.
#
#   XLT_TORCH=cpu   the CPU-only PyTorch build (about 200 MB; the default without an NVIDIA GPU)
#   XLT_TORCH=cuda  PyPI's CUDA build (several GB with its nvidia packages; the default where
#                   nvidia-smi finds a GPU)
#   PYTHON=python3.12 the interpreter the environment is made from (Python >= 3.10)
set -eu
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
TORCH_VERSION=2.13.0  # the version xlt is tested with
CPU_INDEX=https://download.pytorch.org/whl/cpu

if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "setup.sh: xlt needs Python >= 3.10; $PYTHON is $("$PYTHON" -V 2>&1 || echo missing). Set PYTHON=python3.X" >&2
  exit 2
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

if ! .venv/bin/python -c 'import torch' 2>/dev/null; then
  flavour=${XLT_TORCH:-$(command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1 && echo cuda || echo cpu)}
  echo "setup.sh: installing PyTorch $TORCH_VERSION ($flavour build) into .venv"
  case $flavour in
    cuda) pip install "torch==$TORCH_VERSION" ;;
    # A CPU wheel pip already has locally (a --find-links wheelhouse) is used as it is; otherwise
    # PyTorch's CPU index, since PyPI's Linux wheel is the CUDA build.
    cpu) { pip install --no-index --no-deps "torch==$TORCH_VERSION" 2>/dev/null && pip install "torch==$TORCH_VERSION"; } ||
         pip install "torch==$TORCH_VERSION" --index-url "$CPU_INDEX" ;;
    *) echo "setup.sh: XLT_TORCH=$flavour; use cpu or cuda" >&2; exit 2 ;;
  esac
fi

# xlt itself (editable) and its test tools, again only when pyproject.toml changed.
if [ ! -f .venv/.xlt-installed ] || [ pyproject.toml -nt .venv/.xlt-installed ]; then
  echo "setup.sh: installing xlt and its dependencies into .venv"
  pip install --upgrade pip
  pip install -e ".[dev]"
  touch .venv/.xlt-installed
fi
