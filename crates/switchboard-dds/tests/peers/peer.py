"""Cyclone DDS test peer for switchboard-dds (Python binding `cyclonedds`).

Every command prints one JSON object per line on stdout and flushes it, so the
Rust tests can wait on lines with deadlines. Runs only inside the loopback-only
network namespace the DDS tests use.

  peer.py encode TYPE JSON              -> {"hex": "<serialized sample with header>"}
  peer.py write  DOMAIN TOPIC TYPE JSONS [--tl] [--best-effort] [--dispose N] [--linger S] [--wait-match]
                [--repeat N] [--interval S]
  peer.py read   DOMAIN TOPIC TYPE COUNT [--tl] [--best-effort] [--timeout S] [--states]
                (--states: instance state changes count towards COUNT)
  peer.py stamp  DOMAIN TOPIC COUNT INTERVAL LABEL   (bench: Reading, value = send time)
  peer.py lat    DOMAIN TOPIC COUNT TIMEOUT          (bench: latency of stamped Readings)

JSONS is a JSON array of samples (field dicts). A sample {"__bytes__": N}
for type Blob is a blob of N bytes (value i % 251).
"""

import json
import sys
import time
from dataclasses import asdict, dataclass

from cyclonedds.core import Qos, Policy
from cyclonedds.domain import DomainParticipant
from cyclonedds.idl import IdlStruct
from cyclonedds.idl.annotations import key
import cyclonedds.idl.annotations as annotate
from cyclonedds.idl.types import int32, float64, sequence, uint8
from cyclonedds.pub import DataWriter
from cyclonedds.sub import DataReader
from cyclonedds.topic import Topic
from cyclonedds.util import duration


@dataclass
@annotate.final
class Reading(IdlStruct, typename="test::Reading"):
    id: int32
    value: float64
    label: str


@dataclass
@annotate.appendable
class AReading(IdlStruct, typename="test::AReading"):
    id: int32
    value: float64
    label: str


@dataclass
@annotate.final
class Keyed(IdlStruct, typename="test::Keyed"):
    id: int32
    key("id")
    value: float64


@dataclass
@annotate.final
class Blob(IdlStruct, typename="test::Blob"):
    data: sequence[uint8]


@dataclass
@annotate.final
class String_(IdlStruct, typename="std_msgs::msg::dds_::String_"):
    data: str


TYPES = {
    "Reading": Reading,
    "AReading": AReading,
    "Keyed": Keyed,
    "Blob": Blob,
    "String": String_,
}


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def make(cls, d):
    if cls is Blob and "__bytes__" in d:
        n = int(d["__bytes__"])
        return Blob(data=[i % 251 for i in range(n)])
    return cls(**d)


def describe(sample):
    d = asdict(sample)
    if isinstance(sample, Blob):
        data = list(sample.data)
        ok = all(v == i % 251 for i, v in enumerate(data))
        return {"__bytes__": len(data), "pattern_ok": ok}
    return d


def qos(args):
    policies = [Policy.History.KeepLast(10)]
    if "--best-effort" in args:
        policies.append(Policy.Reliability.BestEffort)
    else:
        policies.append(Policy.Reliability.Reliable(duration(seconds=5)))
    if "--tl" in args:
        policies.append(Policy.Durability.TransientLocal)
    else:
        policies.append(Policy.Durability.Volatile)
    return Qos(*policies)


def opt(args, name, default):
    if name in args:
        return float(args[args.index(name) + 1])
    return default


def cmd_encode(args):
    cls = TYPES[args[0]]
    s = make(cls, json.loads(args[1]))
    out({"hex": s.serialize().hex()})


def cmd_write(args):
    domain, topic_name, tname, samples = int(args[0]), args[1], args[2], json.loads(args[3])
    cls = TYPES[tname]
    dp = DomainParticipant(domain)
    topic = Topic(dp, topic_name, cls)
    writer = DataWriter(dp, topic, qos=qos(args))
    if "--wait-match" in args:
        deadline = time.time() + opt(args, "--match-timeout", 20)
        while writer.get_publication_matched_status().current_count == 0:
            if time.time() > deadline:
                out({"error": "no reader matched"})
                sys.exit(3)
            time.sleep(0.05)
        out({"matched": True})
    interval = opt(args, "--interval", 0)
    for d in samples * int(opt(args, "--repeat", 1)):
        s = make(cls, d)
        writer.write(s)
        time.sleep(interval)
        out({"written": describe(s) if cls is Blob else d, "hex": s.serialize().hex()[:200]})
    dispose = opt(args, "--dispose", None)
    if dispose is not None:
        writer.dispose(Keyed(id=int(dispose), value=0.0))
        out({"disposed": int(dispose)})
    writer.wait_for_acks(duration(seconds=5))
    out({"done": True})
    time.sleep(opt(args, "--linger", 0))


def cmd_read(args):
    domain, topic_name, tname, count = int(args[0]), args[1], args[2], int(args[3])
    cls = TYPES[tname]
    dp = DomainParticipant(domain)
    topic = Topic(dp, topic_name, cls)
    reader = DataReader(dp, topic, qos=qos(args))
    out({"ready": True})
    deadline = time.time() + opt(args, "--timeout", 30)
    got = 0
    while got < count and time.time() < deadline:
        try:
            samples = reader.take(N=16)
        except Exception as e:  # "no writers" notifications of appendable keyless types
            out({"take_error": repr(e)})
            samples = []
        for s in samples:
            info = getattr(s, "sample_info", None)
            if info is not None and not info.valid_data:
                out({"instance_state": str(info.instance_state)})
                if "--states" in args:
                    got += 1
                continue
            state = str(info.instance_state) if info is not None else None
            out({"sample": describe(s), "state": state})
            got += 1
        if not samples:
            time.sleep(0.02)
    out({"done": got})
    sys.exit(0 if got >= count else 4)


def cmd_stamp(args):
    """Latency source for the bench: COUNT Reading samples, one per INTERVAL
    seconds, whose `value` is the send time (time.time()) and whose label has
    LABEL bytes; waits for a reader first."""
    domain, topic_name, count, interval, label = (
        int(args[0]), args[1], int(args[2]), float(args[3]), int(args[4]))
    dp = DomainParticipant(domain)
    topic = Topic(dp, topic_name, Reading)
    writer = DataWriter(dp, topic, qos=qos(args))
    deadline = time.time() + 20
    while writer.get_publication_matched_status().current_count == 0:
        if time.time() > deadline:
            out({"error": "no reader matched"})
            sys.exit(3)
        time.sleep(0.05)
    time.sleep(opt(args, "--settle", 0.5))
    text = "x" * label
    for i in range(count):
        writer.write(Reading(id=i, value=time.time(), label=text))
        time.sleep(interval)
    writer.wait_for_acks(duration(seconds=5))
    out({"done": count})


def cmd_lat(args):
    """Latency sink for the bench: takes Reading samples whose `value` is a
    send time until COUNT arrived or TIMEOUT seconds passed; prints
    {"ready": true} once its reader exists, then {"n", "p50_us", "p99_us"}."""
    domain, topic_name, count, timeout = int(args[0]), args[1], int(args[2]), float(args[3])
    dp = DomainParticipant(domain)
    topic = Topic(dp, topic_name, Reading)
    reader = DataReader(dp, topic, qos=qos(args))
    out({"ready": True})
    deadline = time.time() + timeout
    lats = []
    while len(lats) < count and time.time() < deadline:
        samples = reader.take(N=64)
        now = time.time()
        for s in samples:
            info = getattr(s, "sample_info", None)
            if info is not None and not info.valid_data:
                continue
            lats.append((now - s.value) * 1e6)
        if not samples:
            time.sleep(0.0005)
    lats.sort()
    pick = lambda p: lats[round((len(lats) - 1) * p)] if lats else float("nan")
    out({"n": len(lats), "p50_us": pick(0.5), "p99_us": pick(0.99)})


if __name__ == "__main__":
    cmd, rest = sys.argv[1], sys.argv[2:]
    {"encode": cmd_encode, "write": cmd_write, "read": cmd_read,
     "stamp": cmd_stamp, "lat": cmd_lat}[cmd](rest)
