"""Generated documents for the extractor contract suite (no binaries in the repository)."""

from __future__ import annotations

import hashlib
import struct

from tests.scans import text_pdf

# PDF 1.7 (ISO 32000-1) 7.6.3.3, algorithm 2: the 32 bytes that pad a password.
_PDF_PASSWORD_PAD = bytes.fromhex(
    "28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A"
)


def rc4(key: bytes, data: bytes) -> bytes:
    """RC4, the cipher of the PDF standard security handler revision 2 (40-bit keys)."""
    state = list(range(256))
    j = 0
    for i in range(256):
        j = (j + state[i] + key[i % len(key)]) % 256
        state[i], state[j] = state[j], state[i]
    out = bytearray()
    i = j = 0
    for byte in data:
        i = (i + 1) % 256
        j = (j + state[i]) % 256
        state[i], state[j] = state[j], state[i]
        out.append(byte ^ state[(state[i] + state[j]) % 256])
    return bytes(out)


def encrypted_pdf(text: str, *, user_password: str = "secret") -> bytes:
    """A one-page PDF whose text needs `user_password` to read (RC4 40-bit, /V 1 /R 2).

    The security handler as ISO 32000-1 7.6.3 describes it: the owner entry (O),
    the user entry (U), and each stream encrypted with its object's key.
    """
    file_id = hashlib.md5(b"crossdoc-encrypted-fixture").digest()
    permissions = -4  # every permission bit set (the value is what matters, not the rights)
    user_pad = (user_password.encode("latin-1") + _PDF_PASSWORD_PAD)[:32]
    owner_pad = (b"owner-" + user_password.encode("latin-1") + _PDF_PASSWORD_PAD)[:32]
    owner_entry = rc4(hashlib.md5(owner_pad).digest()[:5], user_pad)
    key = hashlib.md5(user_pad + owner_entry + struct.pack("<i", permissions) + file_id).digest()[
        :5
    ]
    user_entry = rc4(key, _PDF_PASSWORD_PAD)

    stream = f"BT /F1 24 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    object_key = hashlib.md5(key + struct.pack("<i", 5)[:3] + b"\x00\x00").digest()[:10]
    sealed = rc4(object_key, stream)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        b"<< /Length %d >>\nstream\n" % len(sealed) + sealed + b"\nendstream",
        b"<< /Filter /Standard /V 1 /R 2 /O <"
        + owner_entry.hex().encode()
        + b"> /U <"
        + user_entry.hex().encode()
        + b"> /P %d >>" % permissions,
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    ident = file_id.hex().encode()
    out += b"trailer\n<< /Size %d /Root 1 0 R /Encrypt 6 0 R /ID [<%s> <%s>] >>\n" % (
        len(objects) + 1,
        ident,
        ident,
    )
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


__all__ = ["encrypted_pdf", "rc4", "text_pdf"]
