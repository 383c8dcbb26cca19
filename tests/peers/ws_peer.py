#!/usr/bin/env python3
"""A real WebSocket client (the `websockets` package) for switchboard's tests.

  ws_peer.py run URL [--send JSON]... [--send-binary B64]... [--recv N] [--timeout S] [--header K:V]...
      Connects, prints {"event":"open"}, sends the frames in order, then prints
      each received frame as one JSON line ({"text": ...} or {"binary": base64}
      or {"close": code, "reason": ...}) until N frames arrived or the timeout.
  ws_peer.py flood URL --topic T --count N [--qos Q]
      Publishes N small messages as fast as it can, then prints {"sent": N}.
  ws_peer.py slow URL --topic T
      Subscribes, then never reads again (until killed).
"""
import argparse
import asyncio
import base64
import json
import sys
import time

import websockets


def out(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def run(a):
    headers = [tuple(h.split(":", 1)) for h in a.header]
    ssl_ctx = None
    if a.cafile:
        import ssl
        ssl_ctx = ssl.create_default_context(cafile=a.cafile)
    try:
        ws = await websockets.connect(a.url, additional_headers=headers, max_size=None, open_timeout=5, ssl=ssl_ctx)
    except websockets.exceptions.InvalidStatus as e:
        out({"event": "refused", "status": e.response.status_code})
        return
    out({"event": "open"})
    for s in a.send:
        await ws.send(s)
    for b in a.send_binary:
        await ws.send(base64.b64decode(b))
    got = 0
    deadline = time.monotonic() + a.timeout
    try:
        while got < a.recv:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                f = await asyncio.wait_for(ws.recv(), timeout=left)
            except asyncio.TimeoutError:
                break
            if isinstance(f, bytes):
                out({"binary": base64.b64encode(f).decode()})
            else:
                out({"text": f})
            got += 1
    except websockets.exceptions.ConnectionClosed as e:
        rcvd = e.rcvd
        out({"close": rcvd.code if rcvd else None, "reason": rcvd.reason if rcvd else None})
        return
    await ws.close()
    out({"event": "done", "frames": got})


async def flood(a):
    async with websockets.connect(a.url, max_size=None) as ws:
        for i in range(a.count):
            await ws.send(json.dumps({"op": "pub", "topic": a.topic, "payload": {"i": i, "t": time.time()}, "qos": a.qos}))
        # Wait for the last reply so every publish was read by the bridge.
        replies = 0
        while replies < a.count:
            f = await asyncio.wait_for(ws.recv(), timeout=60)
            if isinstance(f, str) and '"op":"ok"' in f or '"op":"error"' in f:
                replies += 1
        out({"sent": a.count})


async def slow(a):
    ws = await websockets.connect(a.url, max_size=None, max_queue=1)
    await ws.send(json.dumps({"op": "sub", "topic": a.topic}))
    out({"event": "subscribed"})
    # Stop reading: the transport's buffers fill up and the server must cope.
    ws.transport.pause_reading()
    await asyncio.sleep(3600)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("url")
    r.add_argument("--send", action="append", default=[])
    r.add_argument("--send-binary", action="append", default=[])
    r.add_argument("--recv", type=int, default=0)
    r.add_argument("--timeout", type=float, default=10)
    r.add_argument("--header", action="append", default=[])
    r.add_argument("--cafile")
    f = sub.add_parser("flood")
    f.add_argument("url")
    f.add_argument("--topic", required=True)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--qos", type=int, default=0)
    s = sub.add_parser("slow")
    s.add_argument("url")
    s.add_argument("--topic", required=True)
    a = p.parse_args()
    asyncio.run({"run": run, "flood": flood, "slow": slow}[a.cmd](a))


if __name__ == "__main__":
    main()
