#!/usr/bin/env bash
# A local multi-node Cairn cluster on loopback, for trying it out:
#   3 nats-server nodes (JetStream, file store, sync_interval: always)
#     client ports 4222-4224, cluster ports 6222-6224
#   FerretDB (MongoDB wire protocol) on 27018
#   2 ingest nodes (cairn serve with CAIRN_NATS_URL) on 3001 and 3002
#   1 writer (cairn writer) with /metrics and /health on 3010
#
# Usage: scripts/cluster.sh up|down|status
# State (configs, data, logs, PIDs, the built binary) lives in
# ${CAIRN_CLUSTER_DIR:-./.cluster}. `down` stops every process `up` started,
# by the PIDs it recorded, and keeps the data (rm -rf the directory to reset).
# CAIRN_CLUSTER_SYNC=default runs NATS with its default sync_interval (2 min)
# instead of `always`, to measure the difference (see docs/cluster.md).
# nats-server and FerretDB are built and cached by scripts/ci.d/60-nats.sh and
# scripts/ci.d/10-ferretdb.sh (first run: a few minutes).
set -euo pipefail
cd "$(dirname "$0")/.."
dir="${CAIRN_CLUSTER_DIR:-./.cluster}"
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
secret_file="$dir/auth-secret"

procs=(nats0 nats1 nats2 ferretdb ingest1 ingest2 writer)

pid_of() { cat "$dir/$1.pid" 2>/dev/null || true; }
running() { local p; p="$(pid_of "$1")"; [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }

# wait_port PORT NAME: wait until something listens on 127.0.0.1:PORT.
wait_port() {
	for _ in $(seq 1 300); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		if ! running "$2"; then echo "cluster: $2 exited; see $dir/$2.log" >&2; return 1; fi
		sleep 0.2
	done
	echo "cluster: $2 did not listen on $1; see $dir/$2.log" >&2
	return 1
}

start() { # start NAME CMD...: run CMD in the background, log and PID in $dir
	local name="$1"
	shift
	if running "$name"; then
		echo "cluster: $name already running (pid $(pid_of "$name"))"
		return
	fi
	"$@" >>"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
	echo "cluster: started $name (pid $!)"
}

up() {
	# shellcheck source=ci.d/60-nats.sh
	source scripts/ci.d/60-nats.sh
	# shellcheck source=ci.d/10-ferretdb.sh
	source scripts/ci.d/10-ferretdb.sh
	echo "cluster: building cairn"
	go build -o "$dir/cairn" ./cmd/cairn
	[[ -f "$secret_file" ]] || od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$secret_file"
	local sync=", sync_interval: always"
	[[ "${CAIRN_CLUSTER_SYNC:-always}" == default ]] && sync=""
	for i in 0 1 2; do
		cat >"$dir/nats$i.conf" <<CONF
server_name: n$i
listen: 127.0.0.1:$((4222 + i))
jetstream { store_dir: "$dir/nats$i"$sync }
cluster { name: cairn, listen: 127.0.0.1:$((6222 + i)), routes: [nats://127.0.0.1:6222, nats://127.0.0.1:6223, nats://127.0.0.1:6224] }
CONF
		start "nats$i" "$CAIRN_NATS_SERVER_BIN" -c "$dir/nats$i.conf"
	done
	start ferretdb "$CAIRN_FERRETDB_BIN" -listen 127.0.0.1:27018 -dir "$dir/ferretdb" -log-level error
	for i in 0 1 2; do wait_port $((4222 + i)) "nats$i"; done
	wait_port 27018 ferretdb
	local env=(
		CAIRN_NATS_URL=nats://127.0.0.1:4222,nats://127.0.0.1:4223,nats://127.0.0.1:4224
		MONGODB_URI=mongodb://127.0.0.1:27018/cairn
		BETTER_AUTH_SECRET="$(cat "$secret_file")"
		CAIRN_HOST=127.0.0.1
	)
	start ingest1 env "${env[@]}" PORT=3001 CAIRN_DATA_DIR="$dir/ingest1" "$dir/cairn" serve
	wait_port 3001 ingest1
	start ingest2 env "${env[@]}" PORT=3002 CAIRN_DATA_DIR="$dir/ingest2" "$dir/cairn" serve
	start writer env "${env[@]}" PORT=3010 CAIRN_DATA_DIR="$dir/writer" "$dir/cairn" writer
	wait_port 3002 ingest2
	wait_port 3010 writer
	cat <<MSG
cluster: up. Ingest nodes: http://127.0.0.1:3001 and http://127.0.0.1:3002 (console at /console),
  writer metrics: http://127.0.0.1:3010/metrics, logs and data in $dir.
  Try: $dir/cairn loadgen --url http://127.0.0.1:3001,http://127.0.0.1:3002 --events-per-request 50 --rate 20 --users 20 --duration 10s
  Stop: scripts/cluster.sh down
MSG
}

down() {
	local i name p
	for ((i = ${#procs[@]} - 1; i >= 0; i--)); do # writer and ingest first, NATS last
		name="${procs[$i]}"
		p="$(pid_of "$name")"
		if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
			kill -TERM "$p"
			for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
			if kill -0 "$p" 2>/dev/null; then kill -KILL "$p"; fi
			echo "cluster: stopped $name (pid $p)"
		fi
		rm -f "$dir/$name.pid"
	done
}

status() {
	local name
	for name in "${procs[@]}"; do
		if running "$name"; then echo "$name: running (pid $(pid_of "$name"))"; else echo "$name: stopped"; fi
	done
	if running ingest1; then
		echo "ingest1 /health: $(curl -s http://127.0.0.1:3001/health || true)"
	fi
	if running writer; then
		echo "writer /health: $(curl -s http://127.0.0.1:3010/health || true)"
	fi
}

case "${1:-}" in
up) up ;;
down) down ;;
status) status ;;
*)
	echo "usage: scripts/cluster.sh up|down|status" >&2
	exit 2
	;;
esac
