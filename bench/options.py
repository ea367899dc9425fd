"""The command line every benchmark shares: its docstring as `--help`, and its port."""

from __future__ import annotations

import argparse


def bench_parser(doc: str | None, *, port: int | None = None) -> argparse.ArgumentParser:
    """A parser whose help is `doc` as written (a benchmark's module docstring says
    what it measures and how to read its figures); with `port`, a `--port` option
    (the server the benchmark starts listens there)."""
    parser = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    if port is not None:
        parser.add_argument("--port", type=int, default=port)
    return parser
