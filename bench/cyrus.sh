#!/bin/sh
# Runs the standard jmapload scenario against a private Cyrus IMAP 3.6 (its
# JMAP module) on loopback, with the same variables and defaults as
# bench/run.sh, and writes $OUT/$NAME.json and .html (NAME=cyrus), so that
# the two reports can be compared (`bin/jmapload compare`). `make
# bench-cyrus` calls it.
#
# Everything Cyrus keeps (config, spool, databases, sockets, pid file) lives
# in a temp dir removed on exit. Root is needed only to install the Debian
# packages when they are missing; as root, Cyrus itself runs as the
# `cyrus` user (its services refuse to run as root).
set -eu

. "$(dirname "$0")/scenario.sh"
PORT=${PORT:-18490}
IMAP_PORT=${IMAP_PORT:-$((PORT + 1))}
OUT=${OUT:-bench/out}
NAME=${NAME:-cyrus}
CYRUS_BIN=${CYRUS_BIN:-/usr/lib/cyrus/bin}
SASLPASSWD2=${SASLPASSWD2:-/usr/sbin/saslpasswd2}
# Seconds between Cyrus's checks for changes to push (jmap_pushpoll); its
# default of 60 would make every push wait up to a minute. Cyrus pushes
# only when built with WebSocket support, which Debian's 3.6 is not: its
# event source answers 204 and jmapload skips push with a notice.
PUSHPOLL=${PUSHPOLL:-1}

user=bench
password=bench-password
admin=cyrusadmin
admin_password=admin-password

if [ ! -x "$CYRUS_BIN/master" ] || [ ! -x "$CYRUS_BIN/httpd" ] || [ ! -x "$SASLPASSWD2" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "bench: Cyrus IMAP is not installed; as root: apt-get install -y cyrus-imapd cyrus-caldav sasl2-bin" >&2
		exit 1
	fi
	echo "bench: installing Cyrus IMAP" >&2
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q cyrus-imapd cyrus-caldav sasl2-bin >&2
fi
if ! command -v curl >/dev/null 2>&1; then
	echo "bench: curl is needed" >&2
	exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
	runas=cyrus
else
	runas=$(id -un)
fi

data=$(mktemp -d "${TMPDIR:-/tmp}/cyrus-bench.XXXXXX")
pid=
cleanup() {
	if [ -n "$pid" ]; then
		# master runs in its own process group (set -m below): stop it and
		# every service it forked.
		kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ "$i" -lt 50 ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -KILL -- "-$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$data"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$OUT"
mkdir -p "$data/conf" "$data/spool" "$data/sieve" "$data/socket" "$data/run/proc" "$data/run/lock" "$data/tmp" "$data/search"

# One httpd process serves one connection: leave room for every client,
# importer and push connection of the scenario, and then some.
maxchild=$((CLIENTS + IMPORTERS + 2 * PUSH + 32))

cat >"$data/imapd.conf" <<EOF
configdirectory: $data/conf
partition-default: $data/spool
defaultpartition: default
sievedir: $data/sieve
proc_path: $data/run/proc
mboxname_lockpath: $data/run/lock
temp_path: $data/tmp
lmtpsocket: $data/socket/lmtp
idlesocket: $data/socket/idle
notifysocket: $data/socket/notify
syslog_prefix: cyrus-bench
servername: cyrus-bench
cyrus_user: $runas
admins: $admin
allowplaintext: yes
sasl_pwcheck_method: auxprop
sasl_auxprop_plugin: sasldb
sasl_sasldb_path: $data/sasldb2
sasl_mech_list: PLAIN LOGIN
virtdomains: off
unixhierarchysep: yes
altnamespace: yes
hashimapspool: yes
httpmodules: jmap
httpallowcompress: no
conversations: yes
conversations_db: twoskip
jmap_pushpoll: $PUSHPOLL
search_engine: xapian
search_index_headers: no
search_batchsize: 8192
defaultsearchtier: t1
t1searchpartition-default: $data/search
sync_log: yes
sync_log_channels: squatter
delete_mode: immediate
expunge_mode: immediate
EOF

cat >"$data/cyrus.conf" <<EOF
START {
	recover cmd="$CYRUS_BIN/ctl_cyrusdb -C $data/imapd.conf -r"
}
SERVICES {
	imap cmd="$CYRUS_BIN/imapd -C $data/imapd.conf" listen="127.0.0.1:$IMAP_PORT" prefork=0 maxchild=10
	http cmd="$CYRUS_BIN/httpd -C $data/imapd.conf" listen="127.0.0.1:$PORT" prefork=8 maxchild=$maxchild
}
EVENTS {
	checkpoint cmd="$CYRUS_BIN/ctl_cyrusdb -C $data/imapd.conf -c" period=30
}
DAEMON {
	idled cmd="$CYRUS_BIN/idled -C $data/imapd.conf"
	squatter cmd="$CYRUS_BIN/squatter -C $data/imapd.conf -R"
}
EOF

for u in "$user" "$admin"; do
	if [ "$u" = "$user" ]; then pw=$password; else pw=$admin_password; fi
	printf '%s' "$pw" | "$SASLPASSWD2" -f "$data/sasldb2" -p -c -u cyrus-bench "$u"
done
if [ "$(id -u)" -eq 0 ]; then
	chown -R "$runas" "$data"
fi

# setsid puts master in a process group of its own, which cleanup kills.
setsid "$CYRUS_BIN/master" -C "$data/imapd.conf" -M "$data/cyrus.conf" -p "$data/run/master.pid" -l 256 \
	>"$OUT/$NAME-server.log" 2>&1 &
pid=$!

# Wait for the HTTP service to answer, at most 30 s.
i=0
until [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/.well-known/jmap" 2>/dev/null)" != 000 ]; do
	i=$((i + 1))
	if [ "$i" -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "bench: Cyrus did not start; see $OUT/$NAME-server.log and syslog" >&2
		exit 1
	fi
	sleep 0.1
done

# Create the user's Inbox as the admin over IMAP, then, as the user, the
# folders a new jmapd account has, with their special uses (RFC 6154).
curl -sS --fail "imap://127.0.0.1:$IMAP_PORT/" -u "$admin:$admin_password" -X "CREATE user/$user" >/dev/null
for box in Drafts Sent Archive Junk Trash; do
	curl -sS --fail "imap://127.0.0.1:$IMAP_PORT/" -u "$user:$password" -X "CREATE $box (USE (\\$box))" >/dev/null
done

i=0
until curl -sf -o /dev/null -L "http://127.0.0.1:$PORT/.well-known/jmap" -u "$user:$password"; do
	i=$((i + 1))
	if [ "$i" -gt 100 ]; then
		echo "bench: Cyrus does not answer /.well-known/jmap for $user; see $OUT/$NAME-server.log" >&2
		exit 1
	fi
	sleep 0.1
done

run_scenario "$(dpkg-query -W -f '${Version}' cyrus-imapd 2>/dev/null || echo 3.6)"
