#!/usr/bin/env python3
"""Starts a private rabbitmq-server (own node name, ports, data directory, epmd)
on loopback, captures a pika session with tcpdump, stops everything by PID.

usage: live_capture.py OUT.pcap
Exit 77 when a tool is missing. Every child is started in its own session and
stopped with SIGKILL to its process group (the test runner blocks SIGTERM).
"""
import os, signal, socket, subprocess, sys, tempfile, time, shutil

out = sys.argv[1]
server = "/usr/lib/rabbitmq/bin/rabbitmq-server"
if not (os.path.exists(server) and shutil.which("tcpdump") and shutil.which("epmd")):
    sys.exit(77)
try:
    import pika
except ImportError:
    sys.exit(77)

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def start(args, **kw):
    def pre():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    return subprocess.Popen(args, start_new_session=True, preexec_fn=pre, **kw)

def stop(p):
    try: os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError: pass
    p.wait()

tmp = tempfile.mkdtemp(prefix="ks-amqp-")
amqp_port, dist_port, epmd_port = free_port(), free_port(), free_port()
env = dict(os.environ, RABBITMQ_NODENAME="ksamqp%d@localhost" % amqp_port, RABBITMQ_NODE_PORT=str(amqp_port),
           RABBITMQ_NODE_IP_ADDRESS="127.0.0.1", RABBITMQ_DIST_PORT=str(dist_port), ERL_EPMD_PORT=str(epmd_port),
           RABBITMQ_MNESIA_BASE=tmp + "/mnesia", RABBITMQ_LOG_BASE=tmp + "/log", HOME=tmp,
           RABBITMQ_CONFIG_FILE=tmp + "/rabbitmq", RABBITMQ_ENABLED_PLUGINS_FILE=tmp + "/enabled_plugins",
           RABBITMQ_PID_FILE=tmp + "/pid")
open(tmp + "/enabled_plugins", "w").write("[].\n")
procs = []
try:
    epmd = start(["epmd", "-port", str(epmd_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(epmd)
    rabbit = start([server], env=env, stdout=open(tmp + "/server.out", "w"), stderr=subprocess.STDOUT)
    procs.append(rabbit)
    deadline = time.time() + 90
    while True:
        try:
            socket.create_connection(("127.0.0.1", amqp_port), timeout=1).close(); break
        except OSError:
            if time.time() > deadline or rabbit.poll() is not None:
                sys.stderr.write(open(tmp + "/server.out").read()[-2000:]); sys.exit(2)
            time.sleep(0.5)
    time.sleep(1)
    dump = start(["tcpdump", "-i", "lo", "-U", "-s", "0", "-w", out, "tcp", "port", str(amqp_port)],
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(dump)
    time.sleep(1.5)
    conn = pika.BlockingConnection(pika.ConnectionParameters("127.0.0.1", amqp_port, heartbeat=60))
    ch = conn.channel()
    ch.queue_declare("ks-jobs", durable=False, arguments={"x-max-length": 100})
    ch.exchange_declare("ks-ex", "direct")
    ch.queue_bind("ks-jobs", "ks-ex", routing_key="rk")
    ch.basic_publish("ks-ex", "rk", b"hello from pika",
                     pika.BasicProperties(content_type="text/plain", headers={"n": 1, "s": "v"}, delivery_mode=2))
    ch.basic_publish("", "ks-jobs", b"x" * 300000)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    m = ch.basic_get("ks-jobs", auto_ack=True)
    ch.queue_delete("ks-jobs")
    conn.close()
    time.sleep(1.5)
finally:
    for p in reversed(procs): stop(p)
    shutil.rmtree(tmp, ignore_errors=True)
