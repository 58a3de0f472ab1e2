#!/usr/bin/env python3
"""Hand-written HTTP/1.x server for the fixture cases nginx cannot produce.

Used only by Tests/Fixtures/record-http1.sh, inside a network namespace it
creates. Standard library only. Each connection is served by its own thread;
the route is chosen by the request path:

  /deflate          200, Content-Encoding: deflate (zlib-wrapped), Content-Length
  /trailers         reads a chunked request (with trailers), answers chunked
                    with trailers
  /close10          HTTP/1.0 200, no Content-Length, no chunking, body ends at
                    connection close
  /close11          same with an HTTP/1.1 status line and Connection: close
  /unanswered-close reads the request, closes without answering
  /unanswered-hang  reads the request, never answers; closes once the client
                    has given up (EOF) or after 5 s
  /ws               WebSocket handshake (101), one text frame each way, close

Usage: http1_fixture_server.py HOST PORT READY_FILE
"""
import base64
import hashlib
import socket
import sys
import threading
import time
import zlib

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

DEFLATE_TEXT = b"".join(
    b"deflate line %03d: kubeshark dissects HTTP/1.x bodies encoded with zlib\n" % i
    for i in range(1, 41)
)


class Conn:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError
        self.buf += data

    def read_until(self, delim):
        while delim not in self.buf:
            self.fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n):
        while len(self.buf) < n:
            self.fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out


def read_request(conn):
    head = conn.read_until(b"\r\n\r\n").decode("latin-1")
    lines = head.split("\r\n")
    method, target, version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = b""
    trailers = {}
    if headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size_line = conn.read_until(b"\r\n")[:-2]
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                break
            body += conn.read_exact(size)
            conn.read_exact(2)
        while True:
            line = conn.read_until(b"\r\n")[:-2].decode("latin-1")
            if not line:
                break
            name, _, value = line.partition(":")
            trailers[name.strip()] = value.strip()
    elif "content-length" in headers:
        body = conn.read_exact(int(headers["content-length"]))
    return method, target, version, headers, body, trailers


def handle_deflate(conn, req):
    payload = zlib.compress(DEFLATE_TEXT, 9)  # zlib wrapper (RFC 1950) = HTTP "deflate"
    conn.sock.sendall(
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n"
        b"Content-Encoding: deflate\r\n"
        b"Vary: Accept-Encoding\r\n"
        b"Content-Length: %d\r\n"
        b"\r\n" % len(payload) + payload
    )
    return True


def handle_trailers(conn, req):
    _method, _target, _version, _headers, body, trailers = req
    chunks = [b"echo: ", body, b"\nrequest trailers: %d\n" % len(trailers)]
    whole = b"".join(chunks)
    conn.sock.sendall(
        b"HTTP/1.1 200 OK\r\n"
        b"Content-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Trailer: X-Response-Checksum, X-Chunk-Count\r\n"
        b"\r\n"
    )
    for chunk in chunks:
        time.sleep(0.02)  # separate segments
        conn.sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    time.sleep(0.02)
    conn.sock.sendall(
        b"0\r\n"
        b"X-Response-Checksum: sha256=%s\r\n"
        b"X-Chunk-Count: %d\r\n"
        b"\r\n" % (hashlib.sha256(whole).hexdigest().encode(), len(chunks))
    )
    return True


def handle_close_delimited(conn, req, status_line, extra):
    conn.sock.sendall(status_line + b"\r\nContent-Type: text/plain\r\n" + extra + b"\r\n")
    for i in range(1, 4):
        time.sleep(0.02)
        conn.sock.sendall(b"close-delimited part %d of 3\n" % i)
    return False


def wait_for_eof(conn, limit):
    conn.sock.settimeout(limit)
    try:
        while conn.sock.recv(4096):
            pass
    except (OSError, socket.timeout):
        pass


def handle_unanswered_hang(conn, req):
    wait_for_eof(conn, 5.0)
    return False


def ws_frame(opcode, payload):
    # server frames are not masked; payloads here are < 126 bytes
    return bytes([0x80 | opcode, len(payload)]) + payload


def ws_read_frame(conn):
    b0, b1 = conn.read_exact(2)
    length = b1 & 0x7F
    if length == 126:
        length = int.from_bytes(conn.read_exact(2), "big")
    elif length == 127:
        length = int.from_bytes(conn.read_exact(8), "big")
    mask = conn.read_exact(4) if b1 & 0x80 else b"\0\0\0\0"
    data = conn.read_exact(length)
    return b0 & 0x0F, bytes(c ^ mask[i % 4] for i, c in enumerate(data))


def handle_ws(conn, req):
    headers = req[3]
    key = headers["sec-websocket-key"].encode()
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    conn.sock.sendall(
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: " + accept + b"\r\n"
        b"\r\n"
    )
    opcode, text = ws_read_frame(conn)
    assert opcode == 1, opcode
    conn.sock.sendall(ws_frame(0x1, b"hello from server"))
    opcode, payload = ws_read_frame(conn)
    assert opcode == 8, opcode
    conn.sock.sendall(ws_frame(0x8, payload[:2]))  # echo the close code
    return False  # the server closes the TCP connection first (RFC 6455 7.1.1)


def serve(sock):
    conn = Conn(sock)
    try:
        while True:
            try:
                req = read_request(conn)
            except EOFError:
                return
            path = req[1].split("?")[0]
            if path == "/deflate":
                keep = handle_deflate(conn, req)
            elif path == "/trailers":
                keep = handle_trailers(conn, req)
            elif path == "/close10":
                keep = handle_close_delimited(conn, req, b"HTTP/1.0 200 OK", b"")
            elif path == "/close11":
                keep = handle_close_delimited(
                    conn, req, b"HTTP/1.1 200 OK", b"Connection: close\r\n")
            elif path == "/unanswered-close":
                keep = False
            elif path == "/unanswered-hang":
                keep = handle_unanswered_hang(conn, req)
            elif path == "/ws":
                keep = handle_ws(conn, req)
            else:
                body = b"not found\n"
                conn.sock.sendall(
                    b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                keep = True
            if not keep:
                # Server-side close: send our FIN first, then drain until the
                # client's FIN so the capture ends with a clean close (no RST).
                try:
                    sock.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                wait_for_eof(conn, 2.0)
                return
    except (OSError, EOFError):
        pass
    finally:
        sock.close()


def main():
    host, port, ready_file = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    lsock = socket.socket(family, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind((host, port))
    lsock.listen(16)
    with open(ready_file, "w") as f:
        f.write("ready\n")
    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=serve, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    main()
