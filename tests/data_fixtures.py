"""Test data in the exact official formats, and a loopback HTTP server to download it from.

Nothing here touches the internet: the server listens on 127.0.0.1 on a free
port, serves bytes the tests built, can drop a connection halfway through a
file or ignore ``Range`` headers, and records every request it saw.
"""

import contextlib
import gzip
import hashlib
import io
import pickle
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np


def md5(data):
    return hashlib.md5(data).hexdigest()


# --- the server --------------------------------------------------------------
class LoopbackServer:
    """A ThreadingHTTPServer on 127.0.0.1 (a free port) serving ``Handler`` from a daemon thread;
    a context manager: entering starts it, leaving shuts it down and joins the thread."""

    default_path = ""

    def _serve(self, handler):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)

    def url(self, path=None):
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}{self.default_path if path is None else path}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


class FileServer(LoopbackServer):
    """Serves ``files`` ({"/path": bytes}); ``url(path)`` gives the address.

    honour_range: answer ``Range: bytes=N-`` with 206 Partial Content (else 200 and the whole file).
    cut: {"/path": n}: the next ``len`` requests for path send only n bytes of the body, then
    close the connection (``cut_times`` says how many requests are cut, default 1).
    requests: (path, Range header or None) for every GET, in order.
    """

    def __init__(self, files, honour_range=True, cut=None, cut_times=1):
        self.files = dict(files)
        self.honour_range = honour_range
        self.cut = dict(cut or {})
        self.cuts_left = {path: cut_times for path in self.cut}
        self.requests = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                body = server.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                start = 0
                range_header = self.headers.get("Range")
                if range_header and server.honour_range:
                    start = int(range_header.split("=")[1].split("-")[0])
                    if start >= len(body):
                        self.send_response(416)
                        self.send_header("Content-Range", f"bytes */{len(body)}")
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                    self.send_response(206)
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                else:
                    self.send_response(200)
                self.send_header("Content-Length", str(len(body) - start))
                self.end_headers()
                payload = body[start:]
                if server.cuts_left.get(self.path, 0) > 0:
                    server.cuts_left[self.path] -= 1
                    payload = payload[: server.cut[self.path]]
                    self.close_connection = True
                self.wfile.write(payload)

            def log_message(self, *args):  # keep the test output quiet
                pass

        self._serve(Handler)

    def ranges(self, path):
        """The Range headers of the requests for ``path`` (None where there was none)."""
        return [r for p, r in self.requests if p == path]


def closed_port_url(path="/file"):
    """An address on 127.0.0.1 where nothing listens (connection refused)."""
    import socket

    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"


# --- CIFAR-10: tar.gz of Python 2 pickles ---------------------------------------
class Py2Pickler(pickle._Pickler):
    """Writes pickles the way Python 2 + NumPy 1.x wrote the official CIFAR batches.

    Python 2 ``str`` (here: ``bytes``) is stored as (SHORT_)BINSTRING, not via
    ``_codecs.encode`` as Python 3 does at protocol 2, and NumPy's rebuild
    function is named ``numpy.core.multiarray._reconstruct``.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def save_py2_str(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + len(obj).to_bytes(4, "little") + obj)
        self.memoize(obj)

    def save_text(self, obj):  # NumPy's own str arguments ("u1", "|") were py2 str too
        self.save_py2_str(obj.encode("latin1"))

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_text

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None)
        name = name or obj.__name__
        if module == "numpy._core.multiarray":
            module = "numpy.core.multiarray"
        self.write(pickle.GLOBAL + f"{module}\n{name}\n".encode())
        self.memoize(obj)


def py2_pickle(obj):
    f = io.BytesIO()
    Py2Pickler(f, protocol=2).dump(obj)
    return f.getvalue()


CIFAR_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def cifar_batches(n=4, seed=0):
    """{file name: pickle bytes} like cifar-10-batches-py/, and the expected (images, labels) per split.

    Each of the five training batches and the test batch holds ``n`` random images.
    """
    rng = np.random.default_rng(seed)
    files, expected = {}, {"train": ([], []), "test": ([], [])}
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, size=n)]
        files[name] = py2_pickle({
            b"batch_label": f"batch {name}".encode(),
            b"labels": labels,
            b"data": data,
            b"filenames": [f"img_{name}_{i}.png".encode() for i in range(n)],
        })
        split = "test" if name == "test_batch" else "train"
        expected[split][0].append(data.reshape(n, 3, 32, 32))
        expected[split][1].append(np.array(labels, dtype=np.int64))
    files["batches.meta"] = py2_pickle({
        b"num_cases_per_batch": n,
        b"label_names": [c.encode() for c in CIFAR_CLASSES],
        b"num_vis": 3072,
    })
    expected = {k: (np.concatenate(v[0]), np.concatenate(v[1])) for k, v in expected.items()}
    return files, expected


def tar_gz(members):
    """A .tar.gz holding {path: bytes}, files only, in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def cifar_archive(n=4, seed=0):
    """(archive bytes, md5s for CIFAR10(md5s=...), expected arrays), like cifar-10-python.tar.gz."""
    files, expected = cifar_batches(n, seed)
    archive = tar_gz({f"cifar-10-batches-py/{name}": data for name, data in files.items()})
    md5s = {name: md5(data) for name, data in files.items()}
    md5s["cifar-10-python.tar.gz"] = md5(archive)
    return archive, md5s, expected


# --- Fashion-MNIST: gzipped idx files -----------------------------------------------
def idx_bytes(array):
    """Unsigned-byte idx encoding: 0, 0, 0x08, ndim, big-endian sizes, then the values."""
    array = np.asarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


def fashion_files(n_train=6, n_test=4, seed=0):
    """({name.gz: gz bytes}, {name: raw idx bytes}, expected {"train"/"test": (images, labels)})."""
    rng = np.random.default_rng(seed)
    raw, expected = {}, {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        raw[f"{prefix}-images-idx3-ubyte"] = idx_bytes(images)
        raw[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(labels)
        expected[split] = (images[:, None], labels.astype(np.int64))
    gz = {name + ".gz": gzip.compress(data, mtime=0) for name, data in raw.items()}
    return gz, raw, expected
