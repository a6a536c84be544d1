#!/usr/bin/env bash
# The post log's disk cost per post, measured: ingests an NDJSON file of posts into a fresh
# `sluice serve`, stops it (SIGTERM: the log is synced), and divides the size of the log by
# the number of posts. Prints the cost per day at 1,000 and 5,700 posts/s.
#
# Single node (the default): the log is DATA_DIR/postlog/*.log.
# --cluster: a fresh `nats-server -js` of its own on a free port (needs nats-server on PATH),
# one `sluice serve --nats`, and the log is the JetStream posts stream: the size of that
# stream's directory in the NATS server's store, after the NATS server is stopped too.
#
# Usage: scripts/post-log-disk-cost.sh [--cluster] SLUICE_BINARY POSTS.ndjson
set -euo pipefail
. "$(dirname "$0")/serve.sh"
cluster=
if [ "${1:-}" = --cluster ]; then cluster=1; shift; fi
sluice=${1:?usage: $0 [--cluster] SLUICE_BINARY POSTS.ndjson}
posts=${2:?usage: $0 [--cluster] SLUICE_BINARY POSTS.ndjson}
work=$(mktemp -d)
nats=
server=
trap '[ -n "$server" ] && kill -TERM $server 2>/dev/null; [ -n "$nats" ] && kill -TERM $nats 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
token=disk-cost-measure

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

extra=()
if [ -n "$cluster" ]; then
  port=$(free_port)
  nats-server -js -a 127.0.0.1 -p "$port" -sd "$work/nats" > "$work/nats.log" 2>&1 &
  nats=$!
  for _ in $(seq 100); do
    grep -q "Server is ready" "$work/nats.log" && break
    sleep 0.1
  done
  grep -q "Server is ready" "$work/nats.log" || { cat "$work/nats.log" >&2; exit 1; }
  extra=(--nats "nats://127.0.0.1:$port")
fi

serve_sluice "$sluice" "${extra[@]}"
"$sluice" ingest --url "$url" --token "$token" "$posts" > /dev/null
kill -TERM "$server"
wait "$server"
server=
if [ -n "$cluster" ]; then
  kill -TERM "$nats"
  wait "$nats" || true
  nats=
  where="the JetStream posts stream's directory"
  dir=$(find "$work/nats" -type d -name SLUICE_POSTS | head -n 1)
  [ -n "$dir" ] || { echo "no SLUICE_POSTS stream in the NATS store" >&2; exit 1; }
  stored=$(find "$dir" -type f -printf '%s\n' | awk '{s += $1} END {print s}')
else
  where="the post log"
  stored=$(find "$work/data/postlog" -name '*.log' -printf '%s\n' | awk '{s += $1} END {print s}')
fi
count=$(wc -l < "$posts")
json=$(wc -c < "$posts")
awk -v n="$count" -v j="$json" -v b="$stored" -v where="$where" 'BEGIN {
  per = b / n
  printf "%d posts, %.0f bytes of JSON (%.0f per post), %d bytes in %s: %.0f bytes per post (%.0f %%)\n", n, j, j / n, b, where, per, 100 * b / j
  for (i = 1; i <= 2; i++) {
    rate = (i == 1) ? 1000 : 5700
    day = per * rate * 86400
    printf "at %d posts/s: %.0f GB per day, %.2f TB for 5 days\n", rate, day / 1e9, 5 * day / 1e12
  }
}'
