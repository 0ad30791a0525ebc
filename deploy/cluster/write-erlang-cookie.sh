#!/usr/bin/env bash
# Writes the Erlang cookie the RabbitMQ nodes share (VCS_RABBITMQ_ERLANG_COOKIE) into each
# node's data folder mounted under /nodes/<node>, owned by the image's rabbitmq user with
# mode 0400, as the Erlang VM requires. Make one with: python -c "import secrets; print(secrets.token_hex(32))"
set -euo pipefail
cookie="${VCS_RABBITMQ_ERLANG_COOKIE:?set VCS_RABBITMQ_ERLANG_COOKIE}"
if [[ "${cookie,,}" == *change-me* || ${#cookie} -lt 20 ]]; then
  echo "VCS_RABBITMQ_ERLANG_COOKIE must be a real secret of at least 20 characters" >&2
  exit 2
fi
umask 077
for node in /nodes/*/; do
  printf '%s' "$cookie" > "${node}.erlang.cookie.new"
  chown rabbitmq:rabbitmq "${node}" "${node}.erlang.cookie.new"
  chmod 0400 "${node}.erlang.cookie.new"
  mv -f "${node}.erlang.cookie.new" "${node}.erlang.cookie"
  echo "cookie written for ${node}" >&2
done
