#!/usr/bin/env bash
# Creates (or updates) the RabbitMQ users of DOPA VCS, each with the least permissions it needs.
#
# Run it on a broker node (rabbitmqctl talks to the local node over Erlang distribution, so it
# needs no AMQP user). Passwords come from the environment, never from the repo:
#   VCS_RABBITMQ_INTAKE_PASSWORD, VCS_RABBITMQ_ALLOCATOR_PASSWORD, VCS_RABBITMQ_NOTIFIER_PASSWORD,
#   VCS_RABBITMQ_DESK_PASSWORD
#   VCS_RABBITMQ_INTEGRATION_PASSWORD   optional: the example read-only integration user
# rabbitmqctl 3.x takes a password as an argument: run this on the broker host only.
#
# Options (environment):
#   VCS_NAMESPACE                     exchange/queue prefix (default vcs)
#   VCS_RABBITMQ_VHOST                vhost (default /)
#   VCS_RABBITMQ_USER_PREFIX          prefix of the user names (default none; tests use one)
#   VCS_RABBITMQ_INTEGRATION_TOPICS   regex of binding keys the integration may bind (default .*)
#
# The topology (exchanges, queues with their arguments, bindings) is predeclared from
# definitions.json; the services then run with VCS_DECLARE_TOPOLOGY=false and only check it
# passively, which needs no permission. What each user may do ({configure, write, read}):
#
#   intake      publishes request.submitted/cancelled to <ns>.events, poison to <ns>.dead,
#               audit entries (audit.recorded.*) to <ns>.audit; consumes <ns>.intake. Nothing
#               else: it faces the internet, so it may not write to the default exchange
#               (amq.default) or read any dead-letter queue.
#   allocator   publishes room.assigned/released/reassigned and request.rejected; consumes
#               its shards <ns>.allocator.<k> (and drains <ns>.allocator, unsplit in earlier
#               releases).
#   notifier    publishes credentials.delivered/failed; consumes <ns>.notifier.
#               Each of the three publishes its audit entries (audit.recorded.*) to the internal
#               <ns>.audit exchange, which no integration may read or bind.
#   desk        the operators' desk (internal): reads every <ns>.*.dlq and replays a dead
#               letter into the one queue it came from through <ns>.replay (a headers
#               exchange); reads the feed stream <ns>.feed (every event, for the live feed)
#               and <ns>.desk.audit (the audit log's entries), and its own queue <ns>.desk
#               (the events of requests, for the operators' read model; poison goes to
#               <ns>.dead like any consumer's); publishes
#               support.requested/claimed/done (its support tickets) and no other event, and
#               the audit entries of its own actions; may not write to amq.default.
#   integration declares, binds and reads its own queues: server-named (amq.gen-*; aio-pika
#               names them amq_<hex> itself) or integration.*, binds them to <ns>.events with binding keys matching
#               VCS_RABBITMQ_INTEGRATION_TOPICS; publishes nothing, reads no service queue.
# No user may configure (declare, delete) a shared exchange or queue. Routing keys a service
# may publish on <ns>.events are fixed with topic permissions, so a compromised notifier
# cannot forge a room.assigned.
set -euo pipefail

ns="${VCS_NAMESPACE:-vcs}"
vhost="${VCS_RABBITMQ_VHOST:-/}"
prefix="${VCS_RABBITMQ_USER_PREFIX:-}"
integration_topics="${VCS_RABBITMQ_INTEGRATION_TOPICS:-.*}"

if [[ ! "$ns" =~ ^[a-z][a-z0-9-]{0,40}$ ]]; then
  echo "VCS_NAMESPACE must match ^[a-z][a-z0-9-]{0,40}\$ (it is used inside regexes)" >&2
  exit 2
fi
for var in VCS_RABBITMQ_INTAKE_PASSWORD VCS_RABBITMQ_ALLOCATOR_PASSWORD \
  VCS_RABBITMQ_NOTIFIER_PASSWORD VCS_RABBITMQ_DESK_PASSWORD; do
  if [[ -z "${!var:-}" ]]; then
    echo "$var is not set" >&2
    exit 2
  fi
  if [[ "${!var,,}" == *change-me* ]]; then
    echo "$var is still the example value change-me: set a real password" >&2
    exit 2
  fi
done

existing_users="$(rabbitmqctl -s list_users | cut -f1)"

upsert_user() {
  local name="$1" password="$2"
  if grep -qxF -- "$name" <<<"$existing_users"; then
    rabbitmqctl -q change_password -- "$name" "$password" >/dev/null
  else
    rabbitmqctl -q add_user -- "$name" "$password" >/dev/null
  fi
}

# service_user SERVICE PUBLISHES READS PASSWORD: PUBLISHES is the regex of routing keys it may
# publish on <ns>.events, READS the queue it consumes.
service_user() {
  local service="$1" publishes="$2" reads="$3"
  local user="${prefix}${service}"
  upsert_user "$user" "$4"
  rabbitmqctl -q set_permissions -p "$vhost" "$user" \
    '^$' "^${ns}\\.(events|dead|audit)\$" "$reads" >/dev/null
  rabbitmqctl -q set_topic_permissions -p "$vhost" "$user" "${ns}.events" \
    "$publishes" '^$' >/dev/null
  rabbitmqctl -q set_topic_permissions -p "$vhost" "$user" "${ns}.audit" \
    '^audit\.recorded\.' '^$' >/dev/null
  echo "user ${user}: vhost ${vhost}, namespace ${ns}" >&2
}

desk_user() {
  local user="${prefix}desk"
  upsert_user "$user" "$VCS_RABBITMQ_DESK_PASSWORD"
  rabbitmqctl -q set_permissions -p "$vhost" "$user" \
    '^$' "^${ns}\\.(replay|events|audit|dead)\$" "^${ns}\\.(feed|desk|desk\\.audit|[a-z]+\\.dlq)\$" >/dev/null
  rabbitmqctl -q set_topic_permissions -p "$vhost" "$user" "${ns}.events" \
    '^support\.(requested|claimed|done)\.' '^$' >/dev/null
  rabbitmqctl -q set_topic_permissions -p "$vhost" "$user" "${ns}.audit" \
    '^audit\.recorded\.' '^$' >/dev/null
  echo "user ${user}: vhost ${vhost}, namespace ${ns}" >&2
}

integration_user() {
  local user="${prefix}integration-readonly"
  # server-named queues are amq.gen-*; aio-pika names its "server-named" queues amq_<hex>
  local own='^(amq\.gen-.*|amq_[0-9a-f]+|integration\..*)$'
  upsert_user "$user" "$VCS_RABBITMQ_INTEGRATION_PASSWORD"
  rabbitmqctl -q set_permissions -p "$vhost" "$user" \
    "$own" "$own" "^(amq\\.gen-.*|amq_[0-9a-f]+|integration\\..*|${ns}\\.events)\$" >/dev/null
  rabbitmqctl -q set_topic_permissions -p "$vhost" "$user" "${ns}.events" \
    '^$' "$integration_topics" >/dev/null
  echo "user ${user}: vhost ${vhost}, namespace ${ns}" >&2
}

# Each user is independent: set them up side by side (every rabbitmqctl call boots a VM).
pids=()
service_user intake '^request\.(submitted|cancelled)\.' \
  "^${ns}\\.intake\$" "$VCS_RABBITMQ_INTAKE_PASSWORD" &
pids+=("$!")
service_user allocator '^(room\.(assigned|released|reassigned)|request\.rejected)\.' \
  "^${ns}\\.allocator(\\.[0-9]+)?\$" "$VCS_RABBITMQ_ALLOCATOR_PASSWORD" &
pids+=("$!")
service_user notifier '^credentials\.(delivered|failed)\.' \
  "^${ns}\\.notifier\$" "$VCS_RABBITMQ_NOTIFIER_PASSWORD" &
pids+=("$!")
desk_user &
pids+=("$!")
if [[ -n "${VCS_RABBITMQ_INTEGRATION_PASSWORD:-}" ]]; then
  integration_user &
  pids+=("$!")
fi
failed=0
for pid in "${pids[@]}"; do
  wait "$pid" || failed=1
done
exit "$failed"
