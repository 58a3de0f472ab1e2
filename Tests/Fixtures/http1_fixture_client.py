#!/usr/bin/env python3
"""Raw-socket HTTP/1.x clients for the fixture cases curl cannot make.

Used only by Tests/Fixtures/record-http1.sh, inside a network namespace it
creates. Standard library only.

  http1_fixture_client.py trailers  HOST PORT   chunked POST with a chunk
                                                extension and trailers
  http1_fixture_client.py pipelined HOST PORT   3 GETs in one write on one
                                                keep-alive connection
  http1_fixture_client.py websocket HOST PORT   WebSocket handshake, one text
                                                frame each way, close
"""
import base64
import hashlib
import socket
import sys

WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=5)
        self.buf = b""

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("server closed early")
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

    def read_response(self):
        head = self.read_until(b"\r\n\r\n").decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        body = b""
        trailers = {}
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.read_until(b"\r\n")[:-2].split(b";")[0], 16)
                if size == 0:
                    break
                body += self.read_exact(size)
                self.read_exact(2)
            while True:
                line = self.read_until(b"\r\n")[:-2].decode("latin-1")
                if not line:
                    break
                name, _, value = line.partition(":")
                trailers[name.strip()] = value.strip()
        elif "content-length" in headers:
            body = self.read_exact(int(headers["content-length"]))
        return status, headers, body, trailers

    def close(self):
        self.sock.close()


def host_header(host, port):
    h = "[%s]" % host if ":" in host else host
    return ("%s:%d" % (h, port) if port != 80 else h).encode()


def trailers(host, port):
    c = Conn(host, port)
    parts = [b"hello, ", b"chunked ", b"world"]
    body = b"".join(parts)
    req = (
        b"POST /trailers HTTP/1.1\r\n"
        b"Host: " + host_header(host, port) + b"\r\n"
        b"User-Agent: kstest-raw-client/1\r\n"
        b"Content-Type: text/plain\r\n"
        b"Transfer-Encoding: chunked\r\n"
        b"Trailer: X-Request-Checksum, X-Request-Id\r\n"
        b"\r\n"
    )
    c.sock.sendall(req)
    # first chunk carries a chunk extension (RFC 9112 7.1.1)
    c.sock.sendall(b"%x;note=first\r\n%s\r\n" % (len(parts[0]), parts[0]))
    for p in parts[1:]:
        c.sock.sendall(b"%x\r\n%s\r\n" % (len(p), p))
    c.sock.sendall(
        b"0\r\n"
        b"X-Request-Checksum: sha256=%s\r\n"
        b"X-Request-Id: kstest-42\r\n"
        b"\r\n" % hashlib.sha256(body).hexdigest().encode()
    )
    status, headers, rbody, rtrailers = c.read_response()
    c.close()
    assert status == 200, status
    assert b"hello, chunked world" in rbody, rbody
    assert "X-Response-Checksum" in rtrailers, rtrailers
    print("trailers: %d, %d body bytes, trailers %s" % (status, len(rbody), sorted(rtrailers)))


def pipelined(host, port):
    c = Conn(host, port)
    hh = host_header(host, port)
    paths = [b"/pipe/1.txt", b"/pipe/2.txt", b"/pipe/3.txt"]
    reqs = b"".join(
        b"GET " + p + b" HTTP/1.1\r\nHost: " + hh + b"\r\n"
        b"User-Agent: kstest-raw-client/1\r\nAccept: */*\r\n\r\n"
        for p in paths
    )
    c.sock.sendall(reqs)  # a single write: true pipelining
    for p in paths:
        status, headers, body, _ = c.read_response()
        assert status == 200, (p, status)
        print("pipelined %s: %d, %d body bytes" % (p.decode(), status, len(body)))
    c.close()


def ws_mask(payload, key):
    return bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def websocket(host, port):
    c = Conn(host, port)
    key = b"dGhlIHNhbXBsZSBub25jZQ=="  # the RFC 6455 example nonce
    c.sock.sendall(
        b"GET /ws HTTP/1.1\r\n"
        b"Host: " + host_header(host, port) + b"\r\n"
        b"User-Agent: kstest-raw-client/1\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: " + key + b"\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )
    head = c.read_until(b"\r\n\r\n").decode("latin-1")
    assert head.startswith("HTTP/1.1 101 "), head
    expected = base64.b64encode(hashlib.sha1(key + WS_GUID).digest()).decode()
    assert "Sec-WebSocket-Accept: " + expected in head, head
    mask = b"\x12\x34\x56\x78"
    text = b"hello from client"
    c.sock.sendall(bytes([0x81, 0x80 | len(text)]) + mask + ws_mask(text, mask))
    b0, b1 = c.read_exact(2)
    msg = c.read_exact(b1 & 0x7F)
    assert b0 == 0x81, b0
    close_payload = (1000).to_bytes(2, "big")
    c.sock.sendall(bytes([0x88, 0x80 | 2]) + mask + ws_mask(close_payload, mask))
    b0, b1 = c.read_exact(2)
    c.read_exact(b1 & 0x7F)
    assert b0 == 0x88, b0
    # wait for the server's FIN, then close
    try:
        while c.sock.recv(4096):
            pass
    except OSError:
        pass
    c.close()
    print("websocket: 101, got %r" % msg.decode())


def main():
    mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    {"trailers": trailers, "pipelined": pipelined, "websocket": websocket}[mode](host, port)


if __name__ == "__main__":
    main()
