#!/usr/bin/env python3
"""Starts a private rabbitmq-server (rabbit.py: own node name, ports, data
directory, epmd) on loopback, captures a pika session with tcpdump, stops
everything by PID.

usage: live_capture.py OUT.pcap [BIG_BODY_BYTES]
Prints the broker's port. Exit 77 when a tool is missing. The committed
Tests/Fixtures/amqp/pika-session.pcap was made with BIG_BODY_BYTES 20000
(its port in Tests/Fixtures/amqp/port).
"""
import os, subprocess, sys, time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rabbit import Broker, Missing

out = sys.argv[1]
big_body = int(sys.argv[2]) if len(sys.argv) > 2 else 300000
try:
    import pika
    broker = Broker()
except (ImportError, Missing):
    sys.exit(77)

with broker as b:
    print(b.port, flush=True)
    b.start(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", out, "tcp", "port", str(b.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port, heartbeat=60))
    ch = conn.channel()
    ch.queue_declare("ks-jobs", durable=False, arguments={"x-max-length": 100})
    ch.exchange_declare("ks-ex", "direct")
    ch.queue_bind("ks-jobs", "ks-ex", routing_key="rk")
    ch.basic_publish("ks-ex", "rk", b"hello from pika",
                     pika.BasicProperties(content_type="text/plain", headers={"n": 1, "s": "v"}, delivery_mode=2))
    ch.basic_publish("", "ks-jobs", b"x" * big_body)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    ch.queue_delete("ks-jobs")
    conn.close()
    time.sleep(1.5)
