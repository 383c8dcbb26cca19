#!/usr/bin/env bash
# What one relayed message costs the embedded MQTT relay in instructions and
# in cache lines, under cachegrind, for switchboard (`examples/bridge`: the
# embedded broker plus a client adapter to B) and for mosquitto bridged to
# B. Deterministic, unlike latency: the same build gives the same figures.
#
#   scripts/mqtt-footprint.sh            # both relays
#   BRIDGE_BIN=path/to/bridge scripts/mqtt-footprint.sh sb
#
# Each relay runs twice under valgrind, relaying 500 and then 1500 paced
# QoS 0 messages (200/s) from mosquitto_pub to mosquitto B; the difference
# over 1000 gives the cost of one message without start-up. Caches are
# simulated small (4 KiB L1 I and D, 64 lines each), so that "lines missed"
# approximates the distinct code and data lines a message touches: at 1000
# msg/s on a shared machine each message finds them cold.
#
# Needs valgrind, mosquitto and mosquitto-clients (apt) and a release build
# of the bridge (cargo build --release --example bridge). Everything listens
# on 127.0.0.1; every process started here is stopped by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
who="${1:-sb mq}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/switchboard/target}"
bridge="${BRIDGE_BIN:-$target/release/examples/bridge}"
command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 2; }
# $dir, $pids and their cleanup on exit; port, wait_port
source scripts/loopback-lib.sh
# mosquitto started as root drops to its own user, which writes the output.
chmod 0777 "$dir"
mosq=/usr/sbin/mosquitto
[ -x "$mosq" ] || mosq=mosquitto
cg="valgrind --tool=cachegrind --cache-sim=yes --I1=4096,8,64 --D1=4096,8,64 --LL=8388608,16,64"

# One run: relay $1 (sb|mq) under cachegrind, $2 messages; output in $dir/cg.$1.$2.
run() {
  local w=$1 n=$2 b r rp sub
  b=$(port); r=$(port)
  printf 'listener %s 127.0.0.1\nallow_anonymous true\n' "$b" >"$dir/b.conf"
  "$mosq" -c "$dir/b.conf" >/dev/null 2>&1 & pids+=($!)
  local bp=$!
  wait_port "$b" 300
  if [ "$w" = sb ]; then
    [ -x "$bridge" ] || { echo "no $bridge: cargo build --release --example bridge" >&2; exit 2; }
    printf '[adapter.m]\nkind = "mqtt"\nlisten = "127.0.0.1:%s"\n[adapter.b]\nkind = "mqtt"\nurl = "mqtt://127.0.0.1:%s"\n[[route]]\nfrom = "m:sb/#"\nto = ["b:{0}"]\nqos = 0\n' \
      "$r" "$b" >"$dir/sb.toml"
    $cg --cachegrind-out-file="$dir/cg.$w.$n" "$bridge" --config "$dir/sb.toml" >"$dir/log" 2>&1 & pids+=($!)
  else
    printf 'listener %s 127.0.0.1\nallow_anonymous true\nconnection to_b\naddress 127.0.0.1:%s\ntopic sb/# out 0\ncleansession true\n' \
      "$r" "$b" >"$dir/mq.conf"
    $cg --cachegrind-out-file="$dir/cg.$w.$n" "$mosq" -c "$dir/mq.conf" >"$dir/log" 2>&1 & pids+=($!)
  fi
  rp=$!
  wait_port "$r" 300
  # The relay's connection to B is up once B has a second client.
  for _ in $(seq 1 300); do
    [ "$(ss -tnH state established "sport = :$b" | wc -l)" -ge 1 ] && break
    sleep 0.1
  done
  mosquitto_sub -h 127.0.0.1 -p "$b" -t 'sb/#' -C "$n" >"$dir/sub.txt" & pids+=($!)
  sub=$!
  for _ in $(seq 1 300); do
    [ "$(ss -tnH state established "sport = :$b" | wc -l)" -ge 2 ] && break
    sleep 0.1
  done
  python3 -c "
import time
t = time.time()
for i in range($n):
    print('x' * 60, flush=True)
    t += 1 / 200
    d = t - time.time()
    if d > 0:
        time.sleep(d)
" | mosquitto_pub -h 127.0.0.1 -p "$r" -q 0 -t sb/bench/x -l
  timeout 30 tail --pid="$sub" -f /dev/null || true
  local got
  got=$(wc -l <"$dir/sub.txt")
  kill -INT "$rp"
  wait "$rp" || true
  kill "$bp" 2>/dev/null || true
  wait "$bp" 2>/dev/null || true
  [ "$got" -eq "$n" ] || { echo "$w: B's subscriber got $got of $n" >&2; exit 1; }
}

for w in $who; do
  run "$w" 500
  run "$w" 1500
  python3 - "$w" "$dir/cg.$w.500" "$dir/cg.$w.1500" <<'EOF'
import re, subprocess, sys
def totals(f):
    out = subprocess.run(["cg_annotate", f], capture_output=True, text=True, check=True).stdout
    line = next(l for l in out.splitlines() if "PROGRAM TOTALS" in l)
    return [int(x.replace(",", "")) for x in re.findall(r"([\d,]+) \(", line)]
a, b = totals(sys.argv[2]), totals(sys.argv[3])
ir, i1, _, dr, d1r, _, dw, d1w, _ = [(y - x) / 1000 for x, y in zip(a, b)]
name = "switchboard" if sys.argv[1] == "sb" else "mosquitto"
print(f"{name:12} per message: instructions {ir:.0f}, reads {dr:.0f}, writes {dw:.0f};"
      f" lines missed: code {i1:.0f}, data read {d1r:.0f}, data write {d1w:.0f}, total {i1 + d1r + d1w:.0f}")
EOF
done
