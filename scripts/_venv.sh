# Sourced by scripts/demo and scripts/test: make .venv (Python 3.11) and install $1 into it.
# pip skips what is installed already, so a second run takes seconds.
set -euo pipefail
PY=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "Creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
  .venv/bin/python -m pip install --quiet --upgrade pip
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -r "$1"
