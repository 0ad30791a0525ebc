#!/usr/bin/env bash
# Installs uv with pip when it is missing, then the workspace's locked dependencies.
set -euo pipefail
if ! command -v uv >/dev/null 2>&1; then
  python3 -m pip install --quiet uv
fi
uv sync --frozen --quiet
