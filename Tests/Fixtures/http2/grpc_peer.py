#!/usr/bin/python3
"""A gRPC server and client without generated stubs (raw-bytes serializers,
messages encoded by hand in protobuf wire format), for record.sh and the live test.

  grpc_peer.py server PORT          serve until killed
  grpc_peer.py client PORT [gzip]   run every call kind once, then exit
  grpc_peer.py load PORT SECONDS PID   load for Benchmarks/grpc.sh: concurrent unary
                                    calls and streams until PID (tcpdump) exits
"""
import sys
import grpc

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)

def field_str(num, s):
    b = s.encode() if isinstance(s, str) else s
    return varint(num << 3 | 2) + varint(len(b)) + b

def field_int(num, v):
    return varint(num << 3 | 0) + varint(v)

def hello(name, n):
    # message Hello { string name = 1; int64 count = 2; Inner inner = 3 { string note = 1; }
    #                 string text = 4; }  (text makes the message worth compressing)
    return (field_str(1, name) + field_int(2, n) + field_str(3, field_str(1, "note-%d" % n))
            + field_str(4, "kubeshark dissects gRPC " * 8))

ident = lambda b: b

def unary(req, ctx):
    return hello("reply to unary", 1)

def unary_error(req, ctx):
    ctx.abort(grpc.StatusCode.NOT_FOUND, "no such thing: item 42")

def server_stream(req, ctx):
    for i in range(3):
        yield hello("server item", i)

def client_stream(it, ctx):
    n = sum(1 for _ in it)
    return hello("client sent", n)

def bidi(it, ctx):
    for m in it:
        yield hello("echo", len(m))

def serve(port):
    from concurrent import futures
    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary, ident, ident),
        "Fail": grpc.unary_unary_rpc_method_handler(unary_error, ident, ident),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream, ident, ident),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream, ident, ident),
        "Bidi": grpc.stream_stream_rpc_method_handler(bidi, ident, ident),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.v1.Greeter", handlers),))
    server.add_insecure_port("127.0.0.1:%d" % port)
    server.start()
    print("ready", flush=True)
    server.wait_for_termination()

def client(port, gzip):
    comp = grpc.Compression.Gzip if gzip else grpc.Compression.NoCompression
    with grpc.insecure_channel("127.0.0.1:%d" % port, compression=comp) as ch:
        p = "/demo.v1.Greeter/"
        ch.unary_unary(p + "Unary", ident, ident)(hello("alice", 7), timeout=5)
        list(ch.unary_stream(p + "ServerStream", ident, ident)(hello("bob", 3), timeout=5))
        ch.stream_unary(p + "ClientStream", ident, ident)(iter([hello("carol", i) for i in range(4)]), timeout=5)
        list(ch.stream_stream(p + "Bidi", ident, ident)(iter([hello("dave", i) for i in range(2)]), timeout=5))
        try:
            ch.unary_unary(p + "Fail", ident, ident)(hello("eve", 0), timeout=5)
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND

def load(port, seconds, pid):
    import os, time
    def alive():
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    deadline = time.time() + seconds
    p = "/demo.v1.Greeter/"
    channels = [grpc.insecure_channel("127.0.0.1:%d" % port, compression=(grpc.Compression.Gzip if i % 4 == 3 else None))
                for i in range(4)]
    calls = [(ch.unary_unary(p + "Unary", ident, ident), ch.unary_stream(p + "ServerStream", ident, ident),
              ch.stream_stream(p + "Bidi", ident, ident)) for ch in channels]
    n = 0
    while alive() and time.time() < deadline:
        futures = []
        for unary, server_stream, bidi in calls:
            futures += [unary.future(hello("load", n + i), timeout=10) for i in range(16)]
            list(server_stream(hello("stream", n), timeout=10))
            list(bidi(iter([hello("bidi", i) for i in range(8)]), timeout=10))
        for f in futures:
            f.result()
        n += 1
    for ch in channels:
        ch.close()

if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve(int(sys.argv[2]))
    elif sys.argv[1] == "load":
        load(int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]))
    else:
        client(int(sys.argv[2]), len(sys.argv) > 3 and sys.argv[3] == "gzip")
