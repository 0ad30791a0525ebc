#!/usr/bin/env bash
# The browser tests drive Debian's chromium with Playwright (executable_path = `chromium` on the
# PATH; Playwright's own browser download cannot work here). Installs it when run as root.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  exit 0
fi
if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
  echo "chromium is not installed: installing Debian's chromium" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
else
  echo "chromium is not installed. Install it with: sudo apt-get install -y chromium" >&2
  exit 1
fi
