#!/usr/bin/env python3
"""Compares the two relays of benches/mqtt_relay quantile by quantile.

    MQTT_RELAY_DUMP=/tmp/d MQTT_RELAY_PAIRS=embedded MQTT_RELAY_QOS=0 \\
        cargo bench --bench mqtt_relay
    scripts/mqtt-relay-quantiles.py /tmp/d

MQTT_RELAY_DUMP makes the bench write each round's sorted latencies (us),
one file per relay: NANOS-0.txt (switchboard, or the control's first slot)
and NANOS-1.txt (mosquitto). Run the bench once per pair and QoS into an
empty directory. For each quantile this prints the median over the rounds
of both relays' values, of their ratio and of their difference, and the
difference in each round. A constant difference across quantiles is a
per-message cost; one that grows with the quantile is a larger share of
slow messages.
"""

import statistics
import sys
from pathlib import Path


def load(path):
    return [float(x) for x in path.read_text().split()]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    files = sorted(Path(sys.argv[1]).glob("*-[01].txt"), key=lambda p: int(p.name.split("-")[0]))
    rounds = []
    for a, b in zip(files[0::2], files[1::2]):
        if not (a.name.endswith("-0.txt") and b.name.endswith("-1.txt")):
            sys.exit(f"unpaired files: {a.name} {b.name}")
        sb, mq = load(a), load(b)
        if sb and mq:
            rounds.append((sb, mq))
    if not rounds:
        sys.exit("no rounds")

    def q(v, p):
        return v[round((len(v) - 1) * p)]

    print(f"{len(rounds)} rounds")
    print(f"{'q':>5} {'slot 0':>8} {'slot 1':>8} {'ratio':>7} {'diff us':>8}  per round")
    for p in (0.01, 0.05, 0.1, 0.25, 0.4, 0.5, 0.6, 0.75, 0.9, 0.95, 0.99):
        med = statistics.median
        diffs = [q(a, p) - q(b, p) for a, b in rounds]
        print(
            f"{p:>5} {med(q(a, p) for a, _ in rounds):8.1f} {med(q(b, p) for _, b in rounds):8.1f}"
            f" {med(q(a, p) / q(b, p) for a, b in rounds):7.3f} {med(diffs):8.1f}  "
            + " ".join(f"{d:+.0f}" for d in diffs)
        )


if __name__ == "__main__":
    main()
