#!/usr/bin/env bash
# Installs what the intake serves to browsers itself (no CDN): the Sarabun font, Swagger UI and
# ReDoc, from npm with the committed lock file (services/intake/web-assets/package-lock.json;
# its .npmrc leaves out peer dependencies and install scripts). The one npm installer of the
# repo does it: skipped when node_modules already matches the lock.
exec "$(dirname "$0")/ensure-node-deps.sh" services/intake/web-assets
