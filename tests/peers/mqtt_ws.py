#!/usr/bin/env python3
"""MQTT over WebSocket with paho-mqtt (a real client) for switchboard's tests.

  mqtt_ws.py HOST PORT [--sub TOPIC] [--pub TOPIC PAYLOAD] [--count N] [--timeout S] [--version 4|5] [--wait-disconnect]
Connects to ws://HOST:PORT/mqtt (subprotocol mqtt), prints {"event":"connected"},
subscribes (QoS 1) and prints {"event":"subscribed"}, publishes (QoS 1) and
prints {"event":"published"}, then prints each received message as
{"topic":..., "payload":...} until N arrived or the timeout. With
--wait-disconnect it then waits for the server to end the session and prints
{"event":"disconnected","reason":...} (MQTT 5: the DISCONNECT's reason).
"""
import argparse
import json
import sys
import threading
import time

import paho.mqtt.client as mqtt


def out(o):
    sys.stdout.write(json.dumps(o) + "\n")
    sys.stdout.flush()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--sub")
    p.add_argument("--pub", nargs=2)
    p.add_argument("--count", type=int, default=0)
    p.add_argument("--timeout", type=float, default=10)
    p.add_argument("--version", type=int, default=4)
    p.add_argument("--wait-disconnect", action="store_true")
    a = p.parse_args()
    proto = mqtt.MQTTv5 if a.version == 5 else mqtt.MQTTv311
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, transport="websockets", protocol=proto)
    c.ws_set_options(path="/mqtt")
    connected = threading.Event()
    subscribed = threading.Event()
    got = []
    done = threading.Event()

    def on_connect(client, userdata, flags, rc, props=None):
        out({"event": "connected", "rc": str(rc)})
        connected.set()

    def on_subscribe(client, userdata, mid, rcs, props=None):
        out({"event": "subscribed"})
        subscribed.set()

    def on_message(client, userdata, msg):
        out({"topic": msg.topic, "payload": msg.payload.decode("utf-8", "replace")})
        got.append(msg)
        if len(got) >= a.count:
            done.set()

    disconnected = threading.Event()

    def on_disconnect(client, userdata, flags, rc, props=None):
        out({"event": "disconnected", "reason": str(rc)})
        disconnected.set()

    c.on_disconnect = on_disconnect
    c.on_connect = on_connect
    c.on_subscribe = on_subscribe
    c.on_message = on_message
    c.connect(a.host, a.port, keepalive=30)
    c.loop_start()
    if not connected.wait(a.timeout):
        out({"event": "timeout", "waiting": "connect"})
        sys.exit(1)
    if a.sub:
        c.subscribe(a.sub, qos=1)
        if not subscribed.wait(a.timeout):
            out({"event": "timeout", "waiting": "suback"})
            sys.exit(1)
    if a.pub:
        info = c.publish(a.pub[0], a.pub[1], qos=1)
        info.wait_for_publish(a.timeout)
        out({"event": "published"})
    if a.count:
        done.wait(a.timeout)
    if a.wait_disconnect:
        disconnected.wait(a.timeout)
        c.loop_stop()
        return
    c.loop_stop()
    c.disconnect()
    out({"event": "done", "received": len(got)})


if __name__ == "__main__":
    main()
