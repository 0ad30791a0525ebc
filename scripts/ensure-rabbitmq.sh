#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672 (guest/guest on a dev machine).
# Installed but stopped: starts it. Not installed: installs Debian's package when run as
# root, otherwise says exactly how. A set VCS_AMQP_URL means someone else runs the broker.
set -euo pipefail

port_open() { (exec 3<>/dev/tcp/127.0.0.1/5672) 2>/dev/null; }

if [[ -n "${VCS_AMQP_URL:-}" ]]; then
  exit 0
fi
if port_open; then
  exit 0
fi
if ! command -v rabbitmq-server >/dev/null 2>&1; then
  if [[ "$(id -u)" == "0" ]] && command -v apt-get >/dev/null 2>&1; then
    echo "RabbitMQ is not installed: installing Debian's rabbitmq-server" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
  else
    echo "RabbitMQ is not installed. Install it with:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y rabbitmq-server" >&2
    echo "or point VCS_AMQP_URL at a running broker." >&2
    exit 1
  fi
fi
if ! port_open; then
  echo "starting RabbitMQ (rabbitmq-server -detached)" >&2
  rabbitmq-server -detached >/dev/null 2>&1 || true
fi
for _ in $(seq 1 120); do
  if port_open && rabbitmqctl -q await_startup >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.5
done
echo "RabbitMQ did not come up on 127.0.0.1:5672; see /var/log/rabbitmq/" >&2
exit 1
