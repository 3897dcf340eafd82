# The standard jmapload scenario, shared by run.sh (jmapd) and cyrus.sh
# (Cyrus): its variables and their defaults, and run_scenario LABEL, which
# runs it against the server on $PORT as $user:$password, reading the
# memory of process $pid, and writes the reports to $OUT/$NAME.json and
# .html. Sourced, not run.

JMAPLOAD=${JMAPLOAD:-bin/jmapload}
MESSAGES=${MESSAGES:-100000}
CLIENTS=${CLIENTS:-32}
DURATION=${DURATION:-60s}
IMPORTERS=${IMPORTERS:-4}
PUSH=${PUSH:-100}
PUSH_DURATION=${PUSH_DURATION:-10s}
MIX=${MIX:-}
SEED=${SEED:-1}

run_scenario() {
	"$JMAPLOAD" --session-url "http://127.0.0.1:$PORT/.well-known/jmap" \
		--user "$user:$password" --seed "$SEED" \
		--messages "$MESSAGES" --importers "$IMPORTERS" \
		--clients "$CLIENTS" --duration "$DURATION" ${MIX:+--mix "$MIX"} \
		--push "$PUSH" --push-duration "$PUSH_DURATION" \
		--pid "$pid" --label "$NAME $1" \
		--json "$OUT/$NAME.json" --html "$OUT/$NAME.html"
	echo "bench: wrote $OUT/$NAME.json and $OUT/$NAME.html"
}
