#!/usr/bin/env bash
# The cluster's provisioning, once every node is up: the per-service users (the same script as
# for one node; users are cluster-wide), then a replica of every quorum queue on every node.
# A queue imported from definitions.json by a node that started before the others joined has
# no replica on them yet; `rabbitmq-queues grow` adds the missing ones and is idempotent.
set -euo pipefail
bash /vcs/create-users.sh
for node in ${VCS_RABBITMQ_NODES:?list the node names, separated by spaces}; do
  rabbitmq-queues -q grow "$node" all
done
echo "every quorum queue has a replica on: ${VCS_RABBITMQ_NODES}" >&2
