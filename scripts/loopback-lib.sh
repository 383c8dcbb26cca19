# Sourced by the measurement scripts that start peers on 127.0.0.1, after
# they cd to the repository: a scratch directory `$dir`, removed on exit
# (kept with KEEP=1); `pids`, the processes the script started, stopped by
# PID on exit; and the helpers below.

dir="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  [ -n "${KEEP:-}" ] || rm -rf "$dir"
}
trap cleanup EXIT

# A free TCP port on 127.0.0.1.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# Waits until something accepts on 127.0.0.1:$1, for $2 tenths of a second
# (default 100); exits the script if nothing does.
wait_port() {
  for _ in $(seq 1 "${2:-100}"); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1" >&2
  exit 1
}
