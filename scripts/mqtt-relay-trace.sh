#!/usr/bin/env bash
# Traces one side-by-side round of benches/mqtt_relay (the bridge as its own
# process, QoS 0) with bpftrace, per relay, while its paced messages flow:
#
#   scripts/mqtt-relay-trace.sh path [embedded|clients]
#     from the publishing client's socket write to the relay's write to B,
#     and on to the subscriber's read (medians, 0.5 us buckets);
#   scripts/mqtt-relay-trace.sh wakeups [embedded|clients]
#     the relays' thread wake-ups: on the waker's CPU or not, and the mean
#     time from the wake-up call (sched_waking) to running (in 0.1 us);
#   scripts/mqtt-relay-trace.sh hops
#     every hop of both flows (publisher -> relay -> B -> subscriber): the
#     share of wake-ups on the waker's CPU and the mean sched_waking ->
#     sched_wakeup time of each kind (embedded pair).
#
# Needs root, bpftrace (apt), mosquitto and mosquitto-clients, and the
# release bridge (cargo build --release --example bridge). Everything listens
# on 127.0.0.1; the bench stops what it started, and this script stops its
# bpftrace and the bench by PID.
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-path}"
pair="${2:-embedded}"
# $dir, $pids and their cleanup on exit
source scripts/loopback-lib.sh
ulimit -l 8192 2>/dev/null || true

# Built first: the wait for the round's publishers below is not a build's.
cargo bench --bench mqtt_relay --no-run >/dev/null 2>&1
MQTT_RELAY_PROCESS=1 MQTT_RELAY_PAIRS="$pair" MQTT_RELAY_QOS=0 MQTT_RELAY_ROUNDS=1 \
  MQTT_RELAY_N=2000 cargo bench --bench mqtt_relay >"$dir/bench.txt" 2>&1 &
bench=$!
pids+=("$bench")
# Both publishers up: the round's flows exist; the paced part follows the
# short throughput runs.
for _ in $(seq 1 600); do
  n=$(pgrep -c -f "mosquitto_pub -h 127.0.0.1 -p .* -q 0 -t .*bench/x -l" || true)
  [ "$n" -ge 2 ] && break
  sleep 0.1
done
sleep 0.3
ps -eLo pid,tid,comm,args | grep -E "mosquitto|bridge" | grep -v grep >"$dir/ps.txt"
tid_of() { awk "$1" "$dir/ps.txt" | head -1; }
if [ "$pair" = embedded ]; then mqconf=bridge-q0.conf; else mqconf=relay-q0.conf; fi

if [ "$what" = wakeups ]; then
  w=($(awk '$3=="tokio-rt-worker" {print $2}' "$dir/ps.txt"))
  mq=$(tid_of "/$mqconf/ {print \$2}")
  # The waker's CPU is taken at sched_waking, which runs on it; sched_wakeup
  # itself runs on the target CPU when the wake-up is queued there.
  cat >"$dir/t.bt" <<'EOF'
BEGIN { @relay[$1] = 1; @relay[$2] = 1; @relay[$3] = 2; }
tracepoint:sched:sched_waking /@relay[args->pid]/ { @wcpu[args->pid] = cpu + 1; @tw[args->pid] = nsecs; }
tracepoint:sched:sched_wakeup /@wcpu[args->pid]/ {
  $same = args->target_cpu == @wcpu[args->pid] - 1 ? 1 : 0;
  @on_wakers_cpu[@relay[args->pid], $same] = count();
  @same[args->pid] = $same + 1; @wcpu[args->pid] = 0;
}
tracepoint:sched:sched_switch /@same[args->next_pid]/ {
  @to_cpu_100ns[@relay[args->next_pid], @same[args->next_pid] - 1] = avg((nsecs - @tw[args->next_pid]) / 100);
  @same[args->next_pid] = 0;
}
END { clear(@relay); clear(@tw); clear(@same); clear(@wcpu); }
EOF
  timeout -s INT 3 bpftrace "$dir/t.bt" "${w[0]}" "${w[1]}" "$mq" >"$dir/out.txt" 2>&1 &
  bt=$!
  pids+=("$bt")
  wait "$bt" || true
  echo "keys: [relay (1 switchboard, 2 mosquitto), woken on the waker's CPU]"
  grep -E "^@" "$dir/out.txt" || cat "$dir/out.txt"
elif [ "$what" = hops ]; then
  sbpub=$(tid_of '$3=="mosquitto" && $4=="loop" && /sb\/bench/ {print $2}')
  mqpub=$(tid_of '$3=="mosquitto" && $4=="loop" && /mq\/bench/ {print $2}')
  sbsub=$(tid_of '$3=="mosquitto_sub" && /sb\/bench/ {print $1}')
  mqsub=$(tid_of '$3=="mosquitto_sub" && /mq\/bench/ {print $1}')
  sbrel=$(tid_of '$3=="bridge" {print $1}')
  mqrel=$(tid_of "/$mqconf/ {print \$1}")
  b=$(tid_of '/b-q0.conf/ && !/bridge/ {print $1}')
  # Threads are named by what they wait in: a relay's or B's epoll_wait, a
  # subscriber's read; the publishers' loop threads by their thread ids.
  cat >"$dir/t.bt" <<'EOF'
// 1 relay sb, 2 relay mq, 3 B, 4 sub sb, 5 sub mq, 6 pub sb, 7 pub mq, 0 anyone else
BEGIN { @who[$5] = 6; @who[$6] = 7; }
tracepoint:syscalls:sys_enter_epoll_wait, tracepoint:syscalls:sys_enter_epoll_pwait /pid == $1 || pid == $2 || pid == $3/ { @who[tid] = pid == $1 ? 1 : (pid == $2 ? 2 : 3); }
tracepoint:syscalls:sys_enter_read /pid == $4 || pid == $7/ { @who[tid] = pid == $4 ? 4 : 5; }
tracepoint:sched:sched_waking /@who[args->pid]/ { @wc[args->pid] = cpu + 1; @waker[args->pid] = @who[tid]; @t[args->pid] = nsecs; }
tracepoint:sched:sched_wakeup /@wc[args->pid]/ {
  $same = args->target_cpu == @wc[args->pid] - 1 ? 1 : 0;
  @n[@who[args->pid], @waker[args->pid], $same] = count();
  @wake_100ns[@who[args->pid], @waker[args->pid], $same] = avg((nsecs - @t[args->pid]) / 100);
  @wc[args->pid] = 0;
}
END { clear(@who); clear(@wc); clear(@waker); clear(@t); }
EOF
  timeout -s INT 3 bpftrace "$dir/t.bt" "$sbrel" "$mqrel" "$b" "$sbsub" "$sbpub" "$mqpub" "$mqsub" >"$dir/out.txt" 2>&1 &
  bt=$!
  pids+=("$bt")
  wait "$bt" || true
  python3 - "$dir/out.txt" <<'EOF'
import re, sys
txt = open(sys.argv[1]).read()
name = {1: "relay sb", 2: "relay mq", 3: "B", 4: "sub sb", 5: "sub mq", 6: "pub sb", 7: "pub mq", 0: "other"}
n = {tuple(map(int, k)): int(v) for *k, v in re.findall(r"^@n\[(\d+), (\d+), (\d)\]: (\d+)", txt, re.M)}
us = {tuple(map(int, k)): int(v) / 10 for *k, v in re.findall(r"^@wake_100ns\[(\d+), (\d+), (\d)\]: (\d+)", txt, re.M)}
if not n:
    print(txt)
for wakee, waker in [(1, 6), (2, 7), (3, 1), (3, 2), (4, 3), (5, 3)]:
    same, other = n.get((wakee, waker, 1), 0), n.get((wakee, waker, 0), 0)
    if same + other:
        print(f"{name[wakee]:9} woken by {name[waker]:9}: on the waker's CPU {same / (same + other):.3f} of {same + other};"
              f" sched_waking -> sched_wakeup {us.get((wakee, waker, 1), 0):.1f} us there, {us.get((wakee, waker, 0), 0):.1f} us on the other CPU")
EOF
else
  sbpub=$(tid_of '$3=="mosquitto" && $4=="loop" && /sb\/bench/ {print $2}')
  mqpub=$(tid_of '$3=="mosquitto" && $4=="loop" && /mq\/bench/ {print $2}')
  sbsub=$(tid_of '$3=="mosquitto_sub" && /sb\/bench/ {print $1}')
  mqsub=$(tid_of '$3=="mosquitto_sub" && /mq\/bench/ {print $1}')
  sbrel=$(tid_of '$3=="bridge" {print $1}')
  mqrel=$(tid_of "/$mqconf/ {print \$1}")
  cat >"$dir/t.bt" <<'EOF'
// relay 0: publisher loop thread $1, relay pid $2, subscriber pid $3; relay 1: $4 $5 $6
tracepoint:syscalls:sys_enter_write, tracepoint:syscalls:sys_enter_sendto, tracepoint:syscalls:sys_enter_writev
/tid == $1 || tid == $4/ { $c = tid == $1 ? 0 : 1; @t0[$c] = nsecs; @s[$c] = 1; }
tracepoint:syscalls:sys_enter_write, tracepoint:syscalls:sys_enter_sendto, tracepoint:syscalls:sys_enter_writev
/pid == $2 || pid == $5/ { $c = pid == $2 ? 0 : 1;
  if (@s[$c] == 1) { @to_relay_write[$c] = lhist((nsecs - @t0[$c]) / 500, 0, 200, 1); @s[$c] = 2; } }
tracepoint:syscalls:sys_exit_read, tracepoint:syscalls:sys_exit_recvfrom /(pid == $3 || pid == $6) && args->ret > 0/ {
  $c = pid == $3 ? 0 : 1; if (@s[$c] == 2) { @to_sub_read[$c] = lhist((nsecs - @t0[$c]) / 500, 0, 400, 1); @s[$c] = 0; } }
END { clear(@t0); clear(@s); }
EOF
  timeout -s INT 3 bpftrace "$dir/t.bt" "$sbpub" "$sbrel" "$sbsub" "$mqpub" "$mqrel" "$mqsub" >"$dir/out.txt" 2>&1 &
  bt=$!
  pids+=("$bt")
  wait "$bt" || true
  python3 - "$dir/out.txt" <<'EOF'
import re, sys
txt = open(sys.argv[1]).read()
found = False
for name, c, body in re.findall(r"^@(\w+)\[(\d)\]:\s*\n(.*?)(?=^@|\Z)", txt, re.M | re.S):
    rows = [(int(a), int(n)) for a, _, n in re.findall(r"^\[(\d+), (\d+)\)\s+(\d+)", body, re.M)]
    total = sum(n for _, n in rows); acc = 0
    for lo, n in rows:
        acc += n
        if acc >= total / 2:
            relay = "switchboard" if c == "0" else "mosquitto"
            print(f"{relay:12} {name}: median {lo * 0.5:.1f} us ({total} messages)")
            found = True
            break
if not found:
    print(txt)
EOF
fi
wait "$bench" || true
grep "p50 ratio" "$dir/bench.txt" || tail -5 "$dir/bench.txt"
