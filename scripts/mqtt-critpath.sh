#!/usr/bin/env bash
# The forwarding path of the embedded MQTT relay, measured in the relay
# itself: bpftrace times each message from the relay thread's return from
# epoll_wait (the PUBLISH is readable) to its write to broker B, for
# switchboard (embedded broker + client adapter to B, `examples/bridge`) and
# for mosquitto bridged to B, alternating. Far less noisy than end-to-end
# latency, which includes mosquitto_pub, B and mosquitto_sub. Printed per
# relay and round: wake -> first read, end of the last read -> the write to
# B, the total, and from the end of that write back to epoll_wait (while the
# relay keeps its CPU, B, woken on it, may wait) (medians).
#
#   scripts/mqtt-critpath.sh [ROUNDS]
#   PAIR=clients scripts/mqtt-critpath.sh [ROUNDS]   # the clients pair
#
# QoS 0 only: at QoS 1 the relay also wakes for PUBACKs, which this simple
# probe does not tell apart from PUBLISHes.
#
# Needs root (bpftrace), mosquitto, mosquitto-clients and bpftrace (apt), and
# a release build of the bridge: cargo build --release --example bridge.
# Everything listens on 127.0.0.1; every process started here is stopped by
# PID on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"
qos=0
# PAIR=clients: both relays are clients of a mosquitto A (switchboard's two
# client adapters; mosquitto with two bridge connections) instead of the
# embedded pair.
pair="${PAIR:-embedded}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
bridge="${BRIDGE_BIN:-$target/release/examples/bridge}"
[ -x "$bridge" ] || { echo "no $bridge: cargo build --release --example bridge" >&2; exit 2; }
command -v bpftrace >/dev/null || { echo "bpftrace missing: apt-get install -y bpftrace" >&2; exit 2; }
ulimit -l 8192 || true

# $dir, $pids and their cleanup on exit; port, wait_port
source scripts/loopback-lib.sh
# The fd of PID's connection to B (port $2).
fd_to() {
  for _ in $(seq 1 100); do
    fd=$(ss -tnpH "dst 127.0.0.1:$2" | grep "pid=$1," | sed 's/.*fd=\([0-9]*\).*/\1/' | head -1)
    [ -n "$fd" ] && { echo "$fd"; return 0; }
    sleep 0.1
  done
  echo "PID $1 has no connection to port $2" >&2
  exit 1
}

b=$(port); sb=$(port); mq=$(port); a=$(port)
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$b" > "$dir/b.conf"
printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$a" > "$dir/a.conf"
mosq=/usr/sbin/mosquitto
[ -x "$mosq" ] || mosq=mosquitto
"$mosq" -c "$dir/b.conf" >/dev/null 2>&1 & pids+=($!)
wait_port "$b"
if [ "$pair" = clients ]; then
  # Both relays are clients of A (each on its own topic prefix) and of B.
  "$mosq" -c "$dir/a.conf" >/dev/null 2>&1 & pids+=($!)
  wait_port "$a"
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nconnection mq_from_a\naddress 127.0.0.1:%s\ntopic mq/# in %s\ncleansession true\nconnection mq_to_b\naddress 127.0.0.1:%s\ntopic mq/# out %s\ncleansession true\n' \
    "$mq" "$a" "$qos" "$b" "$qos" > "$dir/mq.conf"
  src="url = \"mqtt://127.0.0.1:$a\""
  sb_pub=$a; mq_pub=$a
else
  printf 'listener %s 127.0.0.1\nallow_anonymous true\nconnection to_b\naddress 127.0.0.1:%s\ntopic mq/# out %s\ncleansession true\n' \
    "$mq" "$b" "$qos" > "$dir/mq.conf"
  src="listen = \"127.0.0.1:$sb\""
  sb_pub=$sb; mq_pub=$mq
fi
printf '[adapter.m]\nkind = "mqtt"\n%s\n[adapter.b]\nkind = "mqtt"\nurl = "mqtt://127.0.0.1:%s"\n[[route]]\nfrom = "m:sb/#"\nto = ["b:{0}"]\nqos = %s\n' \
  "$src" "$b" "$qos" > "$dir/sb.toml"
"$mosq" -c "$dir/mq.conf" >/dev/null 2>&1 & pids+=($!); mq_pid=$!
"$bridge" --config "$dir/sb.toml" >"$dir/sb.log" 2>&1 & pids+=($!); sb_pid=$!
wait_port "$mq"
[ "$pair" = clients ] || wait_port "$sb"
mq_fd=$(fd_to "$mq_pid" "$b"); sb_fd=$(fd_to "$sb_pid" "$b")

cat > "$dir/path.bt" <<'EOF'
tracepoint:syscalls:sys_exit_epoll_wait /pid == $1 && args->ret > 0/ { @t0 = nsecs; @armed = 1; @r = 0; }
tracepoint:syscalls:sys_enter_recvfrom, tracepoint:syscalls:sys_enter_read /pid == $1 && @armed == 1 && @r == 0/ { @wake_to_read = lhist((nsecs - @t0) / 1000, 0, 200, 1); @r = 1; }
tracepoint:syscalls:sys_exit_recvfrom, tracepoint:syscalls:sys_exit_read /pid == $1 && @armed == 1 && args->ret > 0/ { @t1 = nsecs; }
tracepoint:syscalls:sys_enter_writev, tracepoint:syscalls:sys_enter_write, tracepoint:syscalls:sys_enter_sendto
  /pid == $1 && @armed == 1 && args->fd == $2/ {
  @total = lhist((nsecs - @t0) / 1000, 0, 200, 1); @read_to_write = lhist((nsecs - @t1) / 1000, 0, 200, 1); @armed = 0; @w = 1; }
tracepoint:syscalls:sys_exit_writev, tracepoint:syscalls:sys_exit_write, tracepoint:syscalls:sys_exit_sendto
  /pid == $1 && @w == 1/ { @t2 = nsecs; @w = 0; @p = 1; }
tracepoint:syscalls:sys_enter_epoll_wait /pid == $1 && @p == 1/ {
  @write_to_park = lhist((nsecs - @t2) / 1000, 0, 200, 1); @p = 0; }
EOF

# MINIMAL=1: only the two probes the total needs (the wake and the write to
# B), in 0.5 us steps. Each traced syscall costs the relay time of its own,
# and mosquitto makes more of them per message (three reads, two
# epoll_ctl) than switchboard (one recvfrom), so the full probe set above
# favours switchboard's total.
if [ -n "${MINIMAL:-}" ]; then
  cat > "$dir/path.bt" <<'EOF'
tracepoint:syscalls:sys_exit_epoll_wait /pid == $1 && args->ret > 0/ { @t0 = nsecs; @armed = 1; }
tracepoint:syscalls:sys_enter_writev, tracepoint:syscalls:sys_enter_write, tracepoint:syscalls:sys_enter_sendto
  /pid == $1 && @armed == 1 && args->fd == $2/ { @total_halfus = lhist((nsecs - @t0) / 500, 0, 400, 1); @armed = 0; }
EOF
fi

# One measurement: 3000 paced messages through PORT, the relay PID/FD traced.
measure() {
  local port=$1 pid=$2 fd=$3 topic=$4 out="$dir/out.$2"
  timeout -s INT 5 bpftrace "$dir/path.bt" "$pid" "$fd" >"$out" 2>&1 &
  local bt=$!
  pids+=("$bt")
  sleep 1.5
  python3 -c '
import time
t = time.time()
for i in range(3000):
    print("x" * 60, flush=True)
    t += 0.001
    d = t - time.time()
    if d > 0:
        time.sleep(d)
' | mosquitto_pub -h 127.0.0.1 -p "$port" -q "$qos" -t "$topic" -l
  wait "$bt" || true
  python3 - "$out" <<'EOF'
import re, sys
txt = open(sys.argv[1]).read()
res = []
for name, body in re.findall(r"^@(\w+): *\n(.*?)(?=^@|\Z)", txt, re.M | re.S):
    rows = [(int(a), int(c)) for a, _, c in re.findall(r"^\[(\d+), (\d+)\)\s+(\d+)", body, re.M)]
    n = sum(c for _, c in rows)
    scale = 0.5 if name.endswith("_halfus") else 1
    name = name.removesuffix("_halfus")
    def q(p):
        acc = 0
        for lo, c in rows:
            acc += c
            if acc >= n * p:
                return f"{lo * scale:g}"
    if rows:
        res.append(f"{name} {q(0.5)} us" if scale == 1 else f"{name} {q(0.5)} us (p25 {q(0.25)}, p75 {q(0.75)})")
print(", ".join(res) + f" (medians of {n} messages)" if res else "no samples")
EOF
}

echo "epoll wake -> write to B, $pair pair, QoS $qos, $rounds rounds"
for r in $(seq 1 "$rounds"); do
  printf 'round %s  mosquitto:   ' "$r"; measure "$mq_pub" "$mq_pid" "$mq_fd" mq/bench/x
  printf 'round %s  switchboard: ' "$r"; measure "$sb_pub" "$sb_pid" "$sb_fd" sb/bench/x
done
