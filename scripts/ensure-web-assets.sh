#!/usr/bin/env bash
# Installs what the intake serves to browsers itself (no CDN): the Sarabun font, Swagger UI and
# ReDoc, from npm with the committed lock file (services/intake/web-assets/package-lock.json).
# Skipped when node_modules already matches the lock. npm missing: installs Debian's when run as
# root, otherwise says how.
set -euo pipefail
cd "$(dirname "$0")/../services/intake/web-assets"
stamp=node_modules/.installed-lock.sha256
want="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
if ! command -v npm >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "npm is not installed: installing Debian's npm" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
  else
    echo "npm is not installed. Install it with: sudo apt-get install -y npm" >&2
    exit 1
  fi
fi
npm ci --no-audit --no-fund --ignore-scripts --omit=peer --loglevel=error
echo "$want" >"$stamp"
