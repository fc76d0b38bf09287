#!/usr/bin/env bash
# Three dust-serve replicas and HAProxy in front of them, on this machine, without Docker: what a fleet looks
# like behind a load balancer, for trying failover by hand (kill or SIGTERM a replica and watch the robots keep
# going). Needs `npm run build` and the haproxy binary (Debian: apt-get install haproxy).
#
# Usage: deploy/local/replicas.sh [serve flags...]        e.g. --model-repository models --threads 1
# Environment:
#   DUST_LB_HOST          interface HAProxy listens on                      (default 127.0.0.1)
#   DUST_LB_PORT          port robots dial                                  (default 50051)
#   DUST_LB_STATS_PORT    HAProxy's stats page (/stats) and metrics (/metrics) (default 8404)
#   DUST_REPLICA_PORTS    the three replicas' gRPC ports                    (default "50061 50062 50063")
#   DUST_REPLICA_METRICS_PORTS  their Prometheus /metrics ports             (default "9465 9466 9467")
#   DUST_LOCAL_LOG_DIR    where the replicas' and HAProxy's logs go         (default a new /tmp/dust-replicas.*)
#   DUST_*                every other serve option, passed to each replica (e.g. DUST_SHUTDOWN_GRACE_SECONDS)
#
# It prints one line per replica ("replica <n> pid <pid> port <port>"), then "ready ..." once HAProxy runs.
# Ctrl-C (or SIGTERM to this script) stops HAProxy and drains the replicas.
set -euo pipefail
cd "$(dirname "$0")/../.."

LB_HOST=${DUST_LB_HOST:-127.0.0.1}
LB_PORT=${DUST_LB_PORT:-50051}
STATS_PORT=${DUST_LB_STATS_PORT:-8404}
read -r -a PORTS <<<"${DUST_REPLICA_PORTS:-50061 50062 50063}"
read -r -a METRICS_PORTS <<<"${DUST_REPLICA_METRICS_PORTS:-9465 9466 9467}"
[ "${#PORTS[@]}" = 3 ] || { echo "replicas.sh: DUST_REPLICA_PORTS needs three ports (deploy/lb/haproxy.cfg names three servers)" >&2; exit 2; }
[ "${#METRICS_PORTS[@]}" = 3 ] || { echo "replicas.sh: DUST_REPLICA_METRICS_PORTS needs three ports (0 turns a replica's metrics off)" >&2; exit 2; }
[ -f dist/src/cli/main.js ] || { echo "replicas.sh: dist/src/cli/main.js missing: run npm run build first" >&2; exit 1; }
command -v haproxy >/dev/null || { echo "replicas.sh: haproxy not found (Debian: apt-get install haproxy)" >&2; exit 1; }
LOG_DIR=${DUST_LOCAL_LOG_DIR:-$(mktemp -d /tmp/dust-replicas.XXXXXX)}
mkdir -p "$LOG_DIR"

replica_pids=()
lb_pid=
stop() {
  trap - EXIT INT TERM
  [ -z "$lb_pid" ] || kill -TERM "$lb_pid" 2>/dev/null || true
  # SIGTERM: each replica drains (health NOT_SERVING, in-flight work finishes) and exits.
  for pid in "${replica_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap stop EXIT
trap 'stop; exit 0' INT TERM

for i in 0 1 2; do
  log="$LOG_DIR/replica-$((i + 1)).log"
  node dist/src/cli/main.js serve --host 127.0.0.1 --port "${PORTS[$i]}" --metrics-port "${METRICS_PORTS[$i]}" "$@" >"$log" 2>&1 &
  replica_pids+=($!)
done
# Waits until a check passes; stops everything, with the tail of the log, if the process exits first.
await_ready() {
  local name=$1 pid=$2 log=$3
  shift 3
  until "$@"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "replicas.sh: $name exited before it was ready; its log ($log):" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.2
  done
}
# Models load before the port opens: the "listening" line means the replica is ready.
listening() { grep -q '"msg":"dust-serve listening"' "$1"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

for i in 0 1 2; do
  log="$LOG_DIR/replica-$((i + 1)).log"
  await_ready "replica $((i + 1))" "${replica_pids[$i]}" "$log" listening "$log"
  echo "replica $((i + 1)) pid ${replica_pids[$i]} port ${PORTS[$i]}"
done

DUST_LB_BIND="$LB_HOST:$LB_PORT" DUST_LB_STATS_BIND="$LB_HOST:$STATS_PORT" \
  DUST_REPLICA_1="127.0.0.1:${PORTS[0]}" DUST_REPLICA_2="127.0.0.1:${PORTS[1]}" DUST_REPLICA_3="127.0.0.1:${PORTS[2]}" \
  haproxy -db -f deploy/lb/haproxy.cfg >"$LOG_DIR/haproxy.log" 2>&1 &
lb_pid=$!
await_ready haproxy "$lb_pid" "$LOG_DIR/haproxy.log" port_open "$LB_HOST" "$LB_PORT"
echo "ready: HAProxy on $LB_HOST:$LB_PORT (stats http://$LB_HOST:$STATS_PORT/stats) in front of 127.0.0.1:${PORTS[0]},${PORTS[1]},${PORTS[2]}; logs in $LOG_DIR; Ctrl-C stops all"
# Replicas may be killed by hand to try failover; the script runs until HAProxy exits or it is told to stop.
wait "$lb_pid"
