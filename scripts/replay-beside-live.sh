#!/usr/bin/env bash
# Live delivery's latency with and without a Replay job running beside it, for each set of
# `sluice serve` flags given, in one run. For each set: starts a fresh `sluice serve`,
# fills its post log with a `sluice bench powertrack` run, then alternates bench runs
# without and with a loop of full-speed Replay jobs (curl reading a window of those posts
# to the end, rotating over four Replay streams to stay within 5 connects per 5 minutes
# each). Prints each run's live p50/p99/p99.9, posts lost, and the replay jobs completed.
# The replay client (curl, which inflates what it reads) runs at nice 19: it stands for a
# client on another machine, and must not take the cores from the server it measures.
# Usage: scripts/replay-beside-live.sh SLUICE_BINARY [PAIRS] ['SERVE FLAGS'...]
#   (defaults: 2 pairs; the flag sets '--replay-rate 0' (unpaced) and '' (the defaults);
#   needs curl and jq). REPLAY_CLIENT_RATE=2M
#   makes the replay client read at most that many bytes per second (curl --limit-rate).
set -euo pipefail
. "$(dirname "$0")/serve.sh"
sluice=${1:?usage: $0 SLUICE_BINARY [PAIRS] ['SERVE FLAGS'...]}
pairs=${2:-2}
shift $(($# < 2 ? $# : 2))
configs=("$@")
[ ${#configs[@]} -gt 0 ] || configs=("--replay-rate 0" "")
work=$(mktemp -d)
token=replay-measure
# Replay streams to rotate over: each takes 5 connects per 5 minutes.
streams=24
server=
trap '[ -n "$server" ] && kill -TERM $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT

start_server() {
  rm -rf "$work/data"
  # $1: the flag set, split into its words.
  serve_sluice "$sluice" --replay-embargo 0s --post-log-retention 1h $1
}
stop_server() { kill -TERM "$server"; wait "$server" || true; server=; }
admin() { curl -sf -X "$1" -H "Authorization: Bearer $token" -H 'content-type: application/json' \
  "$url$2" -d "$3" > /dev/null; }
bench() {
  "$sluice" bench powertrack --url "$url" --admin-token "$token" --rate 2000 --connections 20 \
    --duration 20s --json > "$work/bench.json"
  jq -r '"\(.latency.p50_ms) \(.latency.p99_ms) \(.latency.p999_ms) \(.loss.lost)"' "$work/bench.json"
}
provision() {
  admin PUT /admin/accounts/acme '{}'
  admin PUT /admin/accounts/acme/users/alice '{"password":"secret"}'
  for r in $(seq -f 'r%g' "$streams"); do
    admin PUT "/admin/accounts/acme/streams/$r" '{"product":"powertrack-replay"}'
    curl -sf -u alice:secret -H 'content-type: application/json' \
      "$url/rules/powertrack-replay/accounts/acme/publishers/twitter/$r.json" \
      -d '{"rules":[{"value":"the OR a OR to OR and OR of OR is OR i OR you"}]}' > /dev/null
  done
}
replay_loop() {
  local done=0 status
  while [ ! -e "$work/stop" ]; do
    status=$(nice -n 19 curl -s --compressed ${REPLAY_CLIENT_RATE:+--limit-rate "$REPLAY_CLIENT_RATE"} -u alice:secret -o /dev/null -w '%{http_code}' \
      "$url/replay/powertrack/accounts/acme/publishers/twitter/r$((next % streams + 1)).json?fromDate=$from&toDate=$to")
    next=$((next + 1))
    [ "$status" = 200 ] && done=$((done + 1))
  done
  echo "$done" > "$work/jobs"
  echo "$next" > "$work/next"
}

printf '%-34s %-8s %-12s %-12s %-12s %-14s %s\n' flags run replay-jobs live-p50-ms live-p99-ms live-p99.9-ms lost
for config in "${configs[@]}"; do
  start_server "$config"
  provision
  from=$(date -u +%Y%m%d%H%M)
  bench > /dev/null
  sleep 61
  to=$(date -u +%Y%m%d%H%M)
  next=0
  for _ in $(seq "$pairs"); do
    read -r p50 p99 p999 lost < <(bench)
    printf '%-34s %-8s %-12s %-12s %-12s %-14s %s\n' "'$config'" without - "$p50" "$p99" "$p999" "$lost"
    rm -f "$work/stop" "$work/jobs"
    replay_loop &
    loop=$!
    sleep 2
    read -r p50 p99 p999 lost < <(bench)
    touch "$work/stop"
    wait "$loop"
    next=$(cat "$work/next")
    printf '%-34s %-8s %-12s %-12s %-12s %-14s %s\n' "'$config'" with "$(cat "$work/jobs")" "$p50" "$p99" "$p999" "$lost"
  done
  stop_server
done
