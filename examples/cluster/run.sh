#!/usr/bin/env bash
# Three `autoclose serve` nodes on one machine, sharing one PostgreSQL database.
#
#   DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres examples/cluster/run.sh
#
# Starts the nodes on 127.0.0.1:8081, 8082 and 8083 (12 shards, placed over the live
# nodes), waits until they have split the shards, prints which node serves which, and
# keeps them running until Ctrl-C (which stops them gracefully). Send events to any node:
#
#   curl -H "Authorization: Bearer $AUTOCLOSE_INGEST_TOKEN" -d '{"type":"session_opened",...}' \
#        http://127.0.0.1:8082/v1/events
#
# Kill one (`kill -9`) and watch the others take its shards:
#   curl -H "Authorization: Bearer $AUTOCLOSE_ADMIN_TOKEN" http://127.0.0.1:8081/v1/admin/nodes
#
# Options: --smoke starts, checks the split and one event, and stops (what the tests run).
# AUTOCLOSE_BIN names the binary (default target/release/autoclose, built if missing);
# BASE_PORT moves the ports (0: any free ports, as the tests use).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
smoke=false
[ "${1:-}" = "--smoke" ] && smoke=true

: "${DATABASE_URL:=postgres://postgres@127.0.0.1:5432/postgres}"
: "${AUTOCLOSE_INGEST_TOKEN:=example-ingest-token-0123456789}"
: "${AUTOCLOSE_ADMIN_TOKEN:=example-admin-token-0123456789}"
: "${AUTOCLOSE_ACTIONS_SECRET:=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw}"
: "${BASE_PORT:=8080}"
export DATABASE_URL AUTOCLOSE_INGEST_TOKEN AUTOCLOSE_ADMIN_TOKEN AUTOCLOSE_ACTIONS_SECRET

bin="${AUTOCLOSE_BIN:-$root/target/release/autoclose}"
if [ ! -x "$bin" ]; then
  (cd "$root" && cargo build --release -p autoclose)
fi

work="$(mktemp -d)"
pids=()
stop() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap stop EXIT

for n in 1 2 3; do
  port=$((BASE_PORT == 0 ? 0 : BASE_PORT + n))
  "$bin" serve --config "$here/config.json" --listen "127.0.0.1:$port" \
    --data "$work/node-$n" --shards 12 2>"$work/node-$n.log" &
  pids+=("$!")
done

# Each node says where it listens once it does.
urls=()
for n in 1 2 3; do
  url=""
  for _ in $(seq 1 300); do
    url="$(grep -o 'listening on http://[0-9.:]*' "$work/node-$n.log" 2>/dev/null | cut -d' ' -f3 || true)"
    [ -n "$url" ] && break
    kill -0 "${pids[$((n - 1))]}" 2>/dev/null || { cat "$work/node-$n.log"; exit 1; }
    sleep 0.1
  done
  [ -n "$url" ] || { echo "node $n did not start" >&2; cat "$work/node-$n.log"; exit 1; }
  urls+=("$url")
done

nodes() {
  curl -fsS -H "Authorization: Bearer $AUTOCLOSE_ADMIN_TOKEN" "${urls[0]}/v1/admin/nodes"
}

# The shards move to their nodes within a few lease renewals (a third of lease_ttl
# each, one shard given away per node and round: about 30 s from a cold start);
# settled, each of the three nodes serves 4 of the 12.
settled() {
  local arrays sizes
  arrays="$(printf '%s' "$1" | grep -o '"shards":\[[0-9,]*\]')" || return 1
  sizes="$(printf '%s\n' "$arrays" | while read -r array; do
    inner="${array#*[}"; inner="${inner%]}"
    if [ -z "$inner" ]; then echo 0; else echo "$inner" | tr ',' '\n' | wc -l; fi
  done | tr '\n' ' ')"
  [ "$sizes" = "4 4 4 " ]
}
split=""
for _ in $(seq 1 600); do
  split="$(nodes || true)"
  settled "$split" && break
  sleep 0.2
done
echo "$split"
settled "$split" || { echo "the nodes did not split the shards" >&2; exit 1; }

event='{"type":"session_opened","tenant":"acme","session":"cluster-example","channel":"web_chat"}'
status="$(curl -sS -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $AUTOCLOSE_INGEST_TOKEN" \
  -H 'content-type: application/json' -d "$event" "${urls[1]}/v1/events")"
echo "an event posted to the second node: $status"
[ "$status" = 202 ] || exit 1

if $smoke; then
  exit 0
fi
echo "three nodes on ${urls[*]}; logs in $work; Ctrl-C stops them"
wait
