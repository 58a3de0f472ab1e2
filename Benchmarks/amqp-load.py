#!/usr/bin/env python3
"""AMQP load for Benchmarks/amqp.sh: a private rabbitmq-server (Tests/Fixtures/amqp/
rabbit.py), tcpdump recording PACKETS packets of its port, one pika publisher and
one pika consumer (its own process) until tcpdump has them or SECONDS pass.
All on 127.0.0.1; everything is stopped by process group.

usage: amqp-load.py OUT.pcap PACKETS SECONDS
Prints the broker port on stdout. Exit 77 when a tool is missing.
"""
import multiprocessing, os, subprocess, sys, time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Fixtures", "amqp"))
from rabbit import Broker, Missing

out, packets, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    import pika
    broker = Broker()
except (ImportError, Missing):
    sys.exit(77)

QUEUE = "bench-orders"
QUEUE_ARGS = {"x-max-length": 100000}


def consume(port, deadline):
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", port, heartbeat=0))
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=False, arguments=QUEUE_ARGS)
    ch.basic_qos(prefetch_count=200)
    count = 0
    for method, props, body in ch.consume(QUEUE, inactivity_timeout=1):
        if method is None:
            if time.time() > deadline:
                break
            continue
        count += 1
        if count % 50 == 0:
            ch.basic_ack(method.delivery_tag, multiple=True)
        if time.time() > deadline:
            break
    conn.close()


with broker as b:
    print(b.port, flush=True)
    dump = b.start(["tcpdump", "-i", "lo", "-U", "-s", "0", "-B", "65536", "-n", "-w", out, "-c", str(packets),
                    "tcp", "port", str(b.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.5)
    deadline = time.time() + seconds
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", b.port, heartbeat=0))
    ch = conn.channel()
    ch.queue_declare(QUEUE, durable=False, arguments=QUEUE_ARGS)
    ch.exchange_declare("bench-ex", "direct")
    ch.queue_bind(QUEUE, "bench-ex", routing_key="orders")
    consumer = multiprocessing.Process(target=consume, args=(b.port, deadline))
    consumer.start()
    sent = 0
    while dump.poll() is None and time.time() < deadline:
        for _ in range(500):
            props = pika.BasicProperties(content_type="application/json", delivery_mode=1,
                                         message_id="m-%d" % sent, headers={"seq": sent, "source": "bench", "retry": False})
            body = b'{"order":%d,"item":"widget-%d","qty":%d}' % (sent, sent % 13, sent % 7)
            ch.basic_publish("bench-ex", "orders", body, props)
            sent += 1
        conn.process_data_events(0)
    consumer.terminate()
    consumer.join()
    try:
        conn.close()
    except Exception:
        pass
    dump.wait(timeout=5) if dump.poll() is None else None
    print("published %d" % sent, file=sys.stderr)
