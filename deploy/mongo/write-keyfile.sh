#!/usr/bin/env bash
# Writes the replica set's keyfile (its members authenticate to each other with it) from
# VCS_MONGO_KEYFILE into /keys/keyfile, owned by the image's mongodb user (uid 999) with mode
# 0400, as mongod requires. Make one with:  openssl rand -base64 756 | tr -d '\n'
set -euo pipefail
key="${VCS_MONGO_KEYFILE:?set VCS_MONGO_KEYFILE}"
if [[ ! "$key" =~ ^[A-Za-z0-9+/=]{6,1024}$ ]]; then
  echo "VCS_MONGO_KEYFILE must be 6 to 1024 base64 characters (openssl rand -base64 756 | tr -d '\\n')" >&2
  exit 2
fi
umask 077
printf '%s\n' "$key" > /keys/keyfile.new
chown 999:999 /keys/keyfile.new
chmod 0400 /keys/keyfile.new
mv -f /keys/keyfile.new /keys/keyfile
echo "keyfile written" >&2
