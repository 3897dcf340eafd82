#!/bin/sh
# Runs the standard jmapload scenario against a fresh jmapd on loopback and
# writes the JSON and HTML reports to $OUT. `make bench` calls it; the
# variables of bench/scenario.sh override the scenario (MESSAGES=2000 DURATION=10s ...).
set -eu

JMAPD=${JMAPD:-bin/jmapd}
. "$(dirname "$0")/scenario.sh"
PORT=${PORT:-18480}
OUT=${OUT:-bench/out}
NAME=${NAME:-jmapd}

user=bench@example.test
password=bench-password
data=$(mktemp -d "${TMPDIR:-/tmp}/jmapd-bench.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
"$JMAPD" user add "$user" --password "$password" --data "$data" >/dev/null
# One user holds every push connection of the scenario: raise the
# per-user cap (default 50) to fit them.
printf '[push]\nmax_connections_per_user = %d\n' $((PUSH * 2 + 16)) >"$data/jmapd.toml"
"$JMAPD" serve --config "$data/jmapd.toml" --data "$data" --listen "127.0.0.1:$PORT" >"$OUT/$NAME-server.log" 2>&1 &
pid=$!

# Wait for the server to answer, at most 30 s.
i=0
until curl -sf "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: jmapd did not start; see $OUT/$NAME-server.log" >&2
		exit 1
	fi
	sleep 0.1
done

run_scenario "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)"
