#!/usr/bin/env bash
# The post log's disk cost per post, measured: ingests an NDJSON file of posts into a fresh
# `sluice serve`, stops it (SIGTERM: the log is synced), and divides the size of
# DATA_DIR/postlog/*.log by the number of posts. Prints the cost per day at 1,000 and
# 5,700 posts/s. Usage: scripts/post-log-disk-cost.sh SLUICE_BINARY POSTS.ndjson
set -euo pipefail
sluice=${1:?usage: $0 SLUICE_BINARY POSTS.ndjson}
posts=${2:?usage: $0 SLUICE_BINARY POSTS.ndjson}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
token=disk-cost-measure
"$sluice" serve --data-dir "$work/data" --listen 127.0.0.1:0 --admin-token "$token" \
  > "$work/banner" 2> "$work/log" &
server=$!
url=
for _ in $(seq 200); do
  url=$(sed -n 's/^sluice .* listening on //p' "$work/banner")
  [ -n "$url" ] && break
  sleep 0.1
done
[ -n "$url" ] || { cat "$work/log" >&2; exit 1; }
"$sluice" ingest --url "$url" --token "$token" "$posts" > /dev/null
kill -TERM "$server"
wait "$server"
count=$(wc -l < "$posts")
json=$(wc -c < "$posts")
stored=$(find "$work/data/postlog" -name '*.log' -printf '%s\n' | awk '{s += $1} END {print s}')
awk -v n="$count" -v j="$json" -v b="$stored" 'BEGIN {
  per = b / n
  printf "%d posts, %.0f bytes of JSON (%.0f per post), %d bytes in the post log: %.0f bytes per post (%.0f %%)\n", n, j, j / n, b, per, 100 * b / j
  for (i = 1; i <= 2; i++) {
    rate = (i == 1) ? 1000 : 5700
    day = per * rate * 86400
    printf "at %d posts/s: %.0f GB per day, %.2f TB for 5 days\n", rate, day / 1e9, 5 * day / 1e12
  }
}'
