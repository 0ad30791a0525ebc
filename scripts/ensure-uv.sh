#!/usr/bin/env bash
# Installs uv from PyPI when it is missing, then the workspace's locked dependencies.
set -euo pipefail
if command -v uv >/dev/null 2>&1; then
  uv=(uv)
else
  python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv
  uv=(python3 -m uv)
fi
"${uv[@]}" sync --frozen --quiet
