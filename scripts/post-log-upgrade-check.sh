#!/usr/bin/env bash
# Checks that a data directory written by one sluice binary is read whole by another (an
# upgrade across a change of the post log's format): OLD serves a fresh data directory,
# gets a PowerTrack stream with the rule `the` and the first 20,000 posts of POSTS; NEW
# then serves the same directory, gets the next 20,000, and a recovery request over the
# whole time must return exactly the posts `NEW match` finds for that rule, in order;
# again after a restart of NEW (its index files then exist).
#
# Usage: scripts/post-log-upgrade-check.sh OLD_SLUICE NEW_SLUICE POSTS.ndjson
set -euo pipefail
. "$(dirname "$0")/serve.sh"
old=${1:?usage: $0 OLD_SLUICE NEW_SLUICE POSTS.ndjson}
new=${2:?usage: $0 OLD_SLUICE NEW_SLUICE POSTS.ndjson}
posts=${3:?usage: $0 OLD_SLUICE NEW_SLUICE POSTS.ndjson}
work=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill -TERM $server 2>/dev/null; wait 2>/dev/null; rm -rf "$work"' EXIT
token=upgrade-check
user=alice:upgrade-check

stop() {
  kill -TERM "$server"
  wait "$server"
  server=
}

admin() {
  curl -sf -X PUT -H "Authorization: Bearer $token" "$url/admin/accounts/$1" -d "$2" > /dev/null
}

# The id_str of each JSON line on stdin, one per line.
ids() {
  python3 -c '
import json, sys
for line in sys.stdin:
    print(json.loads(line)["id_str"])'
}

recover() {
  local end
  end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  curl -sf --compressed -u "$user" \
    "$url/stream/powertrack/accounts/acme/publishers/twitter/prod.json?startTime=$start&endTime=$end" \
    | grep '"matching_rules"' | ids
}

head -n 20000 "$posts" > "$work/first.ndjson"
sed -n '20001,40000p' "$posts" > "$work/second.ndjson"
cat "$work/first.ndjson" "$work/second.ndjson" > "$work/all.ndjson"
echo '{"rules":[{"value":"the","tag":"t"}]}' > "$work/rule.json"
"$new" match --rules "$work/rule.json" --posts "$work/all.ndjson" 2> /dev/null | ids > "$work/expected"

start=$(date -u -d '-1 min' +%Y-%m-%dT%H:%M:%SZ)
serve_sluice "$old"
admin acme '{}'
admin acme/users/alice '{"password":"upgrade-check"}'
admin acme/streams/prod '{"product":"powertrack","max_connections":2}'
curl -sf --compressed -u "$user" "$url/rules/powertrack/accounts/acme/publishers/twitter/prod.json" \
  -d @"$work/rule.json" > /dev/null
"$old" ingest --url "$url" --token "$token" "$work/first.ndjson" > /dev/null
stop

serve_sluice "$new"
"$new" ingest --url "$url" --token "$token" "$work/second.ndjson" > /dev/null
sleep 1
recover > "$work/recovered" || { echo "FAIL: the recovery request failed" >&2; tail -5 "$work/log" >&2; exit 1; }
stop
serve_sluice "$new"
recover > "$work/recovered-again" || { echo "FAIL: the recovery request after a restart failed" >&2; exit 1; }
stop

expected=$(wc -l < "$work/expected")
for got in recovered recovered-again; do
  if ! cmp -s "$work/expected" "$work/$got"; then
    echo "FAIL: $got: $(wc -l < "$work/$got") posts, expected the $expected that match" >&2
    exit 1
  fi
done
echo "ok: $expected posts recovered over both binaries' data, in order, before and after a restart"
