# Shared by the measuring scripts (sourced, not run): starts a `sluice serve` on a free
# loopback port with the data directory "$work/data" and the admin token "$token", and
# waits for its banner. Sets `server` (its pid, for the caller's EXIT trap) and `url`.
#
# Usage: serve_sluice SLUICE_BINARY [MORE SERVE ARGUMENTS...]
serve_sluice() {
  local binary=$1
  shift
  "$binary" serve --data-dir "$work/data" --listen 127.0.0.1:0 --admin-token "$token" "$@" \
    > "$work/banner" 2> "$work/log" &
  server=$!
  url=
  for _ in $(seq 300); do
    url=$(sed -n 's/^sluice .* listening on //p' "$work/banner")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$work/log" >&2; exit 1; }
}
