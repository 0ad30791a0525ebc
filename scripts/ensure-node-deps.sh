#!/usr/bin/env bash
# Installs the npm projects' locked dependencies (`npm ci`, from each committed package-lock.json)
# when their node_modules is missing or was installed from another lock. Node.js and npm from the
# OS packages: installed when run as root on Debian, otherwise this says how.
#   scripts/ensure-node-deps.sh                   every npm project of the repo
#   scripts/ensure-node-deps.sh tools/asyncapi-check
# scripts/ensure-web-assets.sh is this for the intake's browser assets (make deps). Install scripts
# of dependencies are not run (--ignore-scripts): none of ours needs one, and
# some only report telemetry.
set -euo pipefail
cd "$(dirname "$0")/.."

projects=("$@")
if [[ ${#projects[@]} -eq 0 ]]; then
  projects=(services/intake/web-assets tools/asyncapi-check examples/node-subscriber)
fi

if ! command -v npm >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "Node.js is not installed: installing Debian's nodejs and npm" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
  else
    echo "Node.js (18 or later) and npm are not installed. Install them with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y nodejs npm" >&2
    exit 1
  fi
fi

for project in "${projects[@]}"; do
  lock="${project}/package-lock.json"
  stamp="${project}/node_modules/.installed-lock.sha256"
  if [[ ! -f "$lock" ]]; then
    echo "${lock} is missing: every npm project commits its lock file" >&2
    exit 1
  fi
  wanted="$(sha256sum "$lock" | cut -d' ' -f1)"
  if [[ -f "$stamp" && "$(cat "$stamp")" == "$wanted" ]]; then
    continue
  fi
  echo "npm ci in ${project}" >&2
  (cd "$project" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$wanted" >"$stamp"
done
