"""Hangul word-processor documents (HWP 5 and HWPX), read by our own code in the extraction child.

Native Tika reads few HWP 5 files (it sees most as a generic OLE2 container)
and no HWPX at all (it lists the zip's parts). The extraction child therefore
asks `indexer.extraction.hangul.reply.child_reply` first: when the bytes are an
HWP 5 compound file or an HWPX package (decided by content, never by the file
name), the text and metadata come from here and Tika is not run.

Everything in this package runs inside the sandboxed child, under its time and
memory limits, so a hostile file can only cost that child. This module imports
nothing, so that the parent can read `HANGUL_REVISION` cheaply.
"""

from __future__ import annotations

#: Bumped when the text or metadata this package produces changes (part of the extractor version).
HANGUL_REVISION = 1
