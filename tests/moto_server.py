"""An in-process S3 protocol server (moto) for tests: real HTTP, nothing mocked."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from moto.server import ThreadedMotoServer


@contextmanager
def moto_s3_server() -> Iterator[str]:
    """Run a moto S3 server on 127.0.0.1 (a free port) and yield its `host:port`."""
    # werkzeug logs every request at INFO; the test output does not need it.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"{host}:{port}"
    finally:
        server.stop()
