"""A private rabbitmq-server for tests and benchmarks: its own node name, ports,
data directory, HOME and epmd on 127.0.0.1, every child in its own session and
stopped with SIGKILL to its process group (test runners block SIGTERM).

    with Broker() as b:      # raises Missing when a tool is not installed
        ... b.port ...
        p = b.start(["tcpdump", ...])   # other children stopped with the broker
"""
import os, shutil, signal, socket, subprocess, sys, tempfile, time

SERVER = "/usr/lib/rabbitmq/bin/rabbitmq-server"


class Missing(Exception):
    """rabbitmq-server, epmd or tcpdump is not installed."""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, boot_seconds=90):
        if not (os.path.exists(SERVER) and shutil.which("tcpdump") and shutil.which("epmd")):
            raise Missing()
        self.boot_seconds = boot_seconds
        self.procs = []
        self.tmp = None
        self.port = None

    def start(self, args, **kw):
        """Starts a child in its own session with SIGINT/SIGTERM unblocked; stopped on exit."""
        def pre():
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
        p = subprocess.Popen(args, start_new_session=True, preexec_fn=pre, **kw)
        self.procs.append(p)
        return p

    @staticmethod
    def stop(p):
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()

    def __enter__(self):
        self.tmp = tempfile.mkdtemp(prefix="ks-amqp-")
        tmp = self.tmp
        self.port, dist_port, epmd_port = free_port(), free_port(), free_port()
        env = dict(os.environ, RABBITMQ_NODENAME="ksamqp%d@localhost" % self.port,
                   RABBITMQ_NODE_PORT=str(self.port), RABBITMQ_NODE_IP_ADDRESS="127.0.0.1",
                   RABBITMQ_DIST_PORT=str(dist_port), ERL_EPMD_PORT=str(epmd_port),
                   RABBITMQ_MNESIA_BASE=tmp + "/mnesia", RABBITMQ_LOG_BASE=tmp + "/log", HOME=tmp,
                   RABBITMQ_CONFIG_FILE=tmp + "/rabbitmq", RABBITMQ_ENABLED_PLUGINS_FILE=tmp + "/enabled_plugins",
                   RABBITMQ_PID_FILE=tmp + "/pid")
        open(tmp + "/enabled_plugins", "w").write("[].\n")
        try:
            self.start(["epmd", "-port", str(epmd_port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            rabbit = self.start([SERVER], env=env, stdout=open(tmp + "/server.out", "w"), stderr=subprocess.STDOUT)
            deadline = time.time() + self.boot_seconds
            while True:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    break
                except OSError:
                    if time.time() > deadline or rabbit.poll() is not None:
                        sys.stderr.write(open(tmp + "/server.out").read()[-2000:])
                        raise RuntimeError("rabbitmq-server did not start")
                    time.sleep(0.5)
            time.sleep(1)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc):
        for p in reversed(self.procs):
            self.stop(p)
        self.procs = []
        shutil.rmtree(self.tmp, ignore_errors=True)
        return False
