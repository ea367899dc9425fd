"""The audit log's export format: one record a line of JSON (JSON Lines).

Written by the API (`GET /admin/audit/export`) and the command line (`crossdoc audit
export`) alike, so it lives with the records it formats.
"""

from __future__ import annotations

import json
import re

from storage.catalog.records import AuditRecord

# json.dumps escapes C0 controls (newline, ESC…) but, with ensure_ascii=False,
# leaves C1 controls and the Unicode line and paragraph separators raw; some
# line readers split on those, so they are escaped too. They can only occur
# inside JSON strings, where `\uXXXX` means the same character.
_LINE_BREAKERS = re.compile("[\u0080-\u009f\u2028\u2029]")


def audit_json_line(record: AuditRecord) -> str:
    """One audit record as one line of JSON (JSON Lines), newline included.

    Hostile text (newlines, ANSI escapes in filenames or queries) stays inside
    JSON strings, escaped, so every record is exactly one line. The hashes are
    included so an export can be checked against the chain.
    """
    line = json.dumps(
        {
            "id": record.id,
            "at": record.at.isoformat(),
            "actor": record.actor,
            "action": record.action,
            "target": record.target,
            "address": record.address,
            "outcome": record.outcome,
            "detail": record.detail,
            "prev_hash": record.prev_hash,
            "hash": record.hash,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return _LINE_BREAKERS.sub(lambda m: f"\\u{ord(m.group()):04x}", line) + "\n"
