#!/usr/bin/python3
"""A small HTTP/2 cleartext server on python3-h2 (prior knowledge and h2c
upgrade) whose answers exercise the dissector: gzip bodies, trailers,
RST_STREAM, a large body in many DATA frames, padding.

  h2_server.py PORT
"""
import gzip
import socket
import sys
import threading
import h2.config
import h2.connection
import h2.events

def handle(sock):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=False))
    first = sock.recv(65535, socket.MSG_PEEK)
    if first.startswith(b"PRI "):
        conn.initiate_connection()
    else:
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65535)
        head = data.split(b"\r\n\r\n")[0].decode()
        settings = [l.split(":", 1)[1].strip() for l in head.split("\r\n") if l.lower().startswith("http2-settings:")][0]
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        conn.initiate_upgrade_connection(settings_header=settings.encode())
        path = head.split(" ")[1]
        respond(conn, 1, path, b"")
    sock.sendall(conn.data_to_send())
    bodies = {}
    paths = {}
    while True:
        data = sock.recv(65535)
        if not data:
            break
        for ev in conn.receive_data(data):
            if isinstance(ev, h2.events.RequestReceived):
                hdrs = dict((k.decode() if isinstance(k, bytes) else k, v.decode() if isinstance(v, bytes) else v) for k, v in ev.headers)
                paths[ev.stream_id] = hdrs[":path"]
                bodies[ev.stream_id] = b""
            elif isinstance(ev, h2.events.DataReceived):
                bodies[ev.stream_id] = bodies.get(ev.stream_id, b"") + ev.data
                conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                respond(conn, ev.stream_id, paths.get(ev.stream_id, "/"), bodies.get(ev.stream_id, b""))
            elif isinstance(ev, h2.events.ConnectionTerminated):
                sock.sendall(conn.data_to_send())
                sock.close()
                return
        sock.sendall(conn.data_to_send())
    sock.close()

def respond(conn, sid, path, body):
    if path.startswith("/gzip"):
        payload = gzip.compress(b"compressed hello from h2 " * 20)
        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain"), ("content-encoding", "gzip")])
        conn.send_data(sid, payload, end_stream=True)
    elif path.startswith("/trailers"):
        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
        conn.send_data(sid, b"body before trailers\n", pad_length=7)
        conn.send_headers(sid, [("x-checksum", "abc123"), ("x-done", "yes")], end_stream=True)
    elif path.startswith("/reset"):
        conn.send_headers(sid, [(":status", "200"), ("content-type", "text/plain")])
        conn.reset_stream(sid, error_code=8)
    elif path.startswith("/big"):
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/octet-stream")])
        blob = bytes(range(256)) * 160
        for i in range(0, len(blob), 8192):
            conn.send_data(sid, blob[i:i + 8192], end_stream=i + 8192 >= len(blob))
    elif path.startswith("/echo"):
        conn.send_headers(sid, [(":status", "200"), ("content-type", "application/json")])
        conn.send_data(sid, b'{"echo":' + str(len(body)).encode() + b"}", end_stream=True)
    else:
        conn.send_headers(sid, [(":status", "404"), ("content-type", "text/plain")])
        conn.send_data(sid, b"not found\n", end_stream=True)

def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(8)
    print("ready", flush=True)
    while True:
        c, _ = s.accept()
        threading.Thread(target=handle, args=(c,), daemon=True).start()

if __name__ == "__main__":
    main()
