"""Hostile and broken inputs, built by the tests: hand-made zip files and a misbehaving HTTP server.

Nothing here touches the internet: the server binds 127.0.0.1 only, answers
a bounded number of requests, and every body it streams is bounded in bytes
and in seconds.
"""

import struct
import time
import zlib
from http.server import BaseHTTPRequestHandler

from data_fixtures import LoopbackServer


# --- zip files written byte by byte ---------------------------------------------
def raw_zip(members):
    """A zip file from ``members``: dicts with name, data (the bytes as stored), and optionally
    method (0 stored, 8 deflated, or anything), file_size and crc (as declared), flags,
    compress_size (as declared). Lets a test declare what zipfile never would."""
    out, central = bytearray(), bytearray()
    for m in members:
        name = m["name"].encode()
        data = m["data"]
        method = m.get("method", 0)
        file_size = m.get("file_size", len(data))
        crc = m.get("crc", zlib.crc32(data) if method == 0 else 0)
        compress_size = m.get("compress_size", len(data))
        flags = m.get("flags", 0)
        offset = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, flags, method, 0, 0x21, crc, compress_size,
                           file_size, len(name), 0) + name + data
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, flags, method, 0, 0x21, crc,
                               compress_size, file_size, len(name), 0, 0, 0, 0, 0, offset) + name
    start = len(out)
    out += central
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(members), len(members), len(central), start, 0)
    return bytes(out)


def deflate_zeros(n_mib):
    """(raw deflate stream, crc32) of ``n_mib`` MiB of zero bytes, built in milliseconds: one
    fully flushed 1 MiB block repeated (each is self-contained), then an empty final block."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = c.compress(bytes(1 << 20)) + c.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(9, zlib.DEFLATED, -15)
    stream = block * n_mib + end.compress(b"") + end.flush()
    crc, zeros = 0, bytes(1 << 20)
    for _ in range(n_mib):
        crc = zlib.crc32(zeros, crc)
    return stream, crc


# --- a server that misbehaves ---------------------------------------------------
class BadServer(LoopbackServer):
    """Serves one misbehaviour on every path: ``mode`` is one of

    - "no-length-endless": 200 without Content-Length, then ``body`` repeated until
      ``max_bytes`` or ``max_seconds`` (the client should hang up long before);
    - "length-lies": Content-Length ``length`` (a number or any text), then ``body``;
    - "wrong-range": answers a Range request with 206 and Content-Range ``content_range``;
    - "trickle": 200 with the right Content-Length, then one byte every ``interval`` s.

    requests: the (path, Range) pairs seen.
    """

    default_path = "/file"

    def __init__(self, mode, body=b"x" * 1000, length=None, content_range=None, interval=0.05,
                 max_bytes=64 << 20, max_seconds=10.0):
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                try:
                    getattr(self, "mode_" + mode.replace("-", "_"))()
                except (BrokenPipeError, ConnectionResetError):  # the client hung up: what we wanted
                    pass

            def mode_no_length_endless(self):
                self.send_response(200)
                self.send_header("Connection", "close")
                self.end_headers()
                sent, start = 0, time.monotonic()
                while sent < max_bytes and time.monotonic() - start < max_seconds:
                    self.wfile.write(body)
                    sent += len(body)

            def mode_length_lies(self):
                self.send_response(200)
                self.send_header("Content-Length", str(length))
                self.send_header("Connection", "close")
                self.end_headers()
                self.wfile.write(body)

            def mode_wrong_range(self):
                if self.headers.get("Range"):
                    self.send_response(206)
                    self.send_header("Content-Range", content_range)
                    self.send_header("Content-Length", str(len(body)))
                else:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def mode_trickle(self):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                start = time.monotonic()
                for i in range(len(body)):
                    if time.monotonic() - start > max_seconds:
                        break
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(interval)

            def log_message(self, *args):
                pass

        self._serve(Handler)
