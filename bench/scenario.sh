# The standard jmapload scenario, shared by run.sh (jmapd) and cyrus.sh
# (Cyrus): run_scenario LABEL runs it against the server on $PORT as
# $user:$password, reading the memory of process $pid, and writes the
# reports to $OUT/$NAME.json and .html. Sourced, not run.

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
