"""A local RFC 3161 timestamp authority for tests, made with ``openssl ts`` at test time.

A throw-away root CA (EC P-256) issues a TSA certificate (RSA 2048, extended key usage
timeStamping, critical); :meth:`LocalTsa.reply` answers a ``TimeStampReq`` with
``openssl ts -reply``; :meth:`LocalTsa.serve` puts that behind HTTP on 127.0.0.1 as RFC 3161 §3.4
describes (POST application/timestamp-query -> application/timestamp-reply).
"""

from __future__ import annotations

import shutil
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

OPENSSL = shutil.which("openssl")

_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
serial = {dir}/serial
crypto_device = builtin
signer_cert = {dir}/tsa.crt
certs = {dir}/ca.crt
signer_key = {dir}/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.55555.1
digests = sha256
accuracy = secs:1
ordering = yes
tsa_name = yes
ess_cert_id_alg = sha256
"""


class LocalTsa:
    """A TSA in ``directory``: ``ca.crt`` is its root, ``tsa.crt`` its signing certificate."""

    def __init__(self, directory: Path) -> None:
        if OPENSSL is None:
            raise RuntimeError("openssl not installed")
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._run("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
        self._run(
            "req",
            "-x509",
            "-new",
            "-key",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=Test TSA Root",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        )
        self._run(
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "tsa.key",
            "-out",
            "tsa.csr",
            "-subj",
            "/CN=Test TSA",
        )
        (directory / "ext.cnf").write_text("extendedKeyUsage=critical,timeStamping\n")
        self._run(
            "x509",
            "-req",
            "-in",
            "tsa.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "tsa.crt",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
        )
        (directory / "serial").write_text("01\n")
        (directory / "tsa.cnf").write_text(_CONFIG.format(dir=directory))
        self.ca_pem = (directory / "ca.crt").read_bytes()

    def reply(self, tsq: bytes) -> bytes:
        """The DER ``TimeStampResp`` to a DER ``TimeStampReq``."""
        (self.dir / "request.tsq").write_bytes(tsq)
        self._run(
            "ts", "-reply", "-config", "tsa.cnf", "-queryfile", "request.tsq", "-out", "reply.tsr"
        )
        return (self.dir / "reply.tsr").read_bytes()

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve the TSA on 127.0.0.1 for the ``with`` block; yields its URL."""
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers["Content-Type"] != "application/timestamp-query":
                    self.send_error(415)
                    return
                tsr = tsa.reply(body)
                self.send_response(200)
                self.send_header("Content-Type", "application/timestamp-reply")
                self.send_header("Content-Length", str(len(tsr)))
                self.end_headers()
                self.wfile.write(tsr)

            def log_message(self, format: str, *args: object) -> None:
                pass  # keep test output clean

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/tsa"
        finally:
            server.shutdown()
            server.server_close()

    def _run(self, *args: str) -> None:
        assert OPENSSL is not None
        subprocess.run([OPENSSL, *args], cwd=self.dir, check=True, capture_output=True)
