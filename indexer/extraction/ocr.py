"""OCR for scans and image-only PDFs, with Tesseract, inside the extraction child.

Tika gives no text for a photographed or scanned page. When the child finds an
image, or a PDF whose text layer is (nearly) empty, it asks `OcrRunner` for the
text: images are decoded with Pillow (frame by frame, for multi-page TIFFs),
PDF pages are rendered with poppler's `pdftoppm`, and each batch of pages goes
through one `tesseract` process.

Everything here reads untrusted bytes, so it runs in the sandboxed child and
under limits of its own:

- `max_pixels` per page: an image declaring more pixels is refused before it is
  decoded (a decompression bomb costs nothing); a PDF page is rendered at the
  resolution that keeps it under the cap;
- `max_pages` per file: further pages are left out and the text is marked
  truncated;
- `timeout_seconds` for the whole OCR of one file, enforced on every
  subprocess (pages done before the deadline are kept);
- `memory_limit_bytes`: the `RLIMIT_DATA` of each subprocess (set with
  util-linux `prlimit`; without it they inherit the child's own limit).

Nothing is downloaded at run time: the languages are the installed
`tesseract-ocr-<lang>` packages. A missing program or language makes OCR
"unavailable", which is reported, never raised.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

#: Image types OCR is tried on (Tika's detected type).
IMAGE_TYPES = frozenset(
    {
        "image/png",
        "image/jpeg",
        "image/tiff",
        "image/gif",
        "image/bmp",
        "image/x-ms-bmp",
        "image/webp",
    }
)
PDF_TYPE = "application/pdf"
#: A PDF with fewer non-blank characters than this per page counts as image-only
#: (scans often carry a page number or a stamp in a text layer).
MIN_CHARS_PER_PAGE = 10
#: Pages handed to one tesseract process (its models load once per process, ~0.3 s;
#: fewer pages keep the temporary files small).
PAGES_PER_BATCH = 4
#: Time the parent allows beyond the OCR budget, for the child to send its reply.
REPLY_GRACE_SECONDS = 10.0
#: Resolutions below this make text unreadable; above it only cost time.
MIN_DPI = 50
_LANGUAGES = re.compile(r"^[A-Za-z0-9_]+(?:\+[A-Za-z0-9_]+)*$")
_PAGE_SIZE = re.compile(rb"^Page\s+(\d+)\s+size:\s+([\d.]+)\s+x\s+([\d.]+)\s+pts", re.MULTILINE)
_PAGES = re.compile(rb"^Pages:\s+(\d+)", re.MULTILINE)
_SPACE_RUN = re.compile(r"[ \t]{2,}")
_OUT_OF_MEMORY = re.compile(r"bad_alloc|out of memory|Cannot allocate|alloc fail", re.IGNORECASE)
#: Seconds a subprocess is given at least, so a nearly spent budget still fails cleanly.
_MIN_STEP_SECONDS = 1.0

OcrStatus = Literal["ok", "empty", "unavailable", "limit_exceeded", "parse_error"]


@dataclass(frozen=True)
class OcrConfig:
    """How OCR runs (from settings; passed to the child as JSON)."""

    enabled: bool = True
    languages: str = "kor+eng"  # tesseract's -l, e.g. "kor+eng"
    timeout_seconds: float = 180.0  # for all pages of one file
    memory_limit_bytes: int = 1024 * 1024 * 1024  # RLIMIT_DATA of each subprocess, 0: inherit
    max_pages: int = 20
    max_pixels: int = 50_000_000  # per page (A4 at 300 dpi is 8.7 million)
    dpi: int = 300  # PDF rendering resolution, and the assumed one of images without any
    tesseract: str = "tesseract"
    pdftoppm: str = "pdftoppm"
    pdfinfo: str = "pdfinfo"
    prlimit: str = "prlimit"
    #: util-linux `setpriv`: each subprocess is killed if the extraction child dies.
    setpriv: str = "setpriv"

    def resolved(self) -> OcrConfig:
        """The same settings with each program's absolute path (where found), for a
        child that runs without a search path."""
        return replace(
            self,
            **{
                name: shutil.which(getattr(self, name)) or getattr(self, name)
                for name in ("tesseract", "pdftoppm", "pdfinfo", "prlimit", "setpriv")
            },
        )

    def __post_init__(self) -> None:
        if not _LANGUAGES.match(self.languages):
            raise ValueError(f"invalid OCR languages {self.languages!r} (e.g. 'kor+eng')")
        if self.timeout_seconds <= 0 or self.max_pages < 1 or self.max_pixels < 10_000:
            raise ValueError("invalid OCR limits")
        if self.memory_limit_bytes < 0 or not MIN_DPI <= self.dpi <= 1200:
            raise ValueError("invalid OCR limits")

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> OcrConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class EngineProbe:
    """Whether OCR can run here: the tesseract version, or why not."""

    available: bool
    version: str = ""  # e.g. "5.3.0"
    reason: str = ""  # why OCR is unavailable

    @property
    def tag(self) -> str:
        """Short description for the extractor version (cached text depends on it)."""
        return f"tesseract-{self.version}" if self.available else "unavailable"


def probe_engine(config: OcrConfig) -> EngineProbe:
    """Check that tesseract runs and has every configured language (never raises)."""
    program = shutil.which(config.tesseract)
    if program is None:
        return EngineProbe(False, reason="tesseract is not installed")
    try:
        version = subprocess.run(  # noqa: S603 - our configured program, fixed arguments
            [program, "--version"], capture_output=True, timeout=30, check=False
        )
        listed = subprocess.run(  # noqa: S603
            [program, "--list-langs"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError) as err:
        return EngineProbe(False, reason=f"tesseract does not run: {err}")
    if version.returncode != 0 or listed.returncode != 0:
        return EngineProbe(False, reason="tesseract does not run")
    words = (version.stdout + version.stderr).decode("utf-8", "replace").split()
    number = words[1] if len(words) > 1 and words[0] == "tesseract" else "unknown"
    installed = set(listed.stdout.decode("utf-8", "replace").split())
    missing = [lang for lang in config.languages.split("+") if lang not in installed]
    if missing:
        return EngineProbe(
            False, version=number, reason=f"no tesseract data for {'+'.join(missing)}"
        )
    return EngineProbe(True, version=number)


def wants_ocr(content_type: str, text: str, metadata: Mapping[str, Sequence[str]]) -> bool:
    """True for an image, or a PDF whose text layer is (nearly) empty.

    `content_type` is Tika's detected base type, `metadata` Tika's raw metadata
    (`xmpTPg:NPages` gives a PDF's page count).
    """
    if content_type in IMAGE_TYPES:
        return True
    if content_type != PDF_TYPE:
        return False
    try:
        pages = max(1, int((metadata.get("xmpTPg:NPages") or ["1"])[0]))
    except (TypeError, ValueError):
        pages = 1
    visible = sum(1 for char in text if not char.isspace())
    return visible < MIN_CHARS_PER_PAGE * pages


@dataclass
class OcrOutcome:
    """What OCR made of one file (sent back to the parent as the reply's "ocr")."""

    status: OcrStatus
    text: str = ""
    detail: str = ""  # the reason for a non-ok status, or a note ("first 20 of 57 pages")
    pages: int = 0  # pages recognised
    truncated: bool = False  # pages were left out (page cap, deadline) or the text was cut
    seconds: float = 0.0

    def to_reply(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "text"}


class _Deadline(Exception):
    """The OCR budget of this file is spent."""


class _Refused(Exception):
    """The input cannot be OCR'd; `status` and the message say why."""

    def __init__(self, status: OcrStatus, message: str) -> None:
        super().__init__(message)
        self.status: OcrStatus = status


@dataclass
class _Page:
    path: str
    dpi: int


@dataclass
class _Run:
    """State of one file's OCR."""

    deadline: float
    max_chars: int
    texts: list[str] = field(default_factory=list)
    chars: int = 0
    pages_done: int = 0
    pages_total: int = 0
    truncated: bool = False

    def remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left < _MIN_STEP_SECONDS:
            raise _Deadline
        return left


class OcrRunner:
    """Runs OCR on one file at a time, in the extraction child (see module doc)."""

    def __init__(
        self,
        config: OcrConfig,
        *,
        max_text_chars: int,
        on_start: Callable[[float], None] = lambda seconds: None,
    ) -> None:
        """`on_start(seconds)` is called before any work on a file: the child
        tells its parent that the file now has `seconds` more to finish."""
        self.config = config
        self.probe = probe_engine(config)
        self._max_chars = max_text_chars
        self._on_start = on_start
        self._prlimit = shutil.which(config.prlimit)
        self._setpriv = _pdeathsig_wrapper(config.setpriv)
        self._env = {**os.environ, "OMP_THREAD_LIMIT": "1"}
        # Tesseract's OpenMP threads fight over the cores: on a 2-core machine two
        # threads make a page ~7x slower than one. The pool gives parallelism.

    def run(self, path: str, content_type: str) -> OcrOutcome:
        """OCR the image or PDF at `path` (`content_type` as detected by Tika)."""
        if not self.probe.available:
            return OcrOutcome("unavailable", detail=self.probe.reason)
        self._on_start(self.config.timeout_seconds)
        started = time.monotonic()
        run = _Run(deadline=started + self.config.timeout_seconds, max_chars=self._max_chars)
        try:
            with tempfile.TemporaryDirectory(prefix="crossdoc-ocr-") as workdir:
                if content_type == PDF_TYPE:
                    self._ocr_pdf(path, workdir, run)
                else:
                    self._ocr_image(path, workdir, run)
        except _Refused as refused:
            return OcrOutcome(refused.status, detail=str(refused), seconds=_since(started))
        except _Deadline:
            run.truncated = True
            if not run.pages_done:
                detail = f"timeout: OCR took more than {self.config.timeout_seconds:g} s"
                return OcrOutcome("limit_exceeded", detail=detail, seconds=_since(started))
        text = "\n\n".join(part for part in run.texts if part)
        notes = []
        if run.truncated:
            notes.append(f"{run.pages_done} of {run.pages_total} pages")
        outcome = OcrOutcome(
            "ok" if text.strip() else "empty",
            text=text,
            detail=", ".join(notes),
            pages=run.pages_done,
            truncated=run.truncated,
            seconds=_since(started),
        )
        return outcome

    # -- images ------------------------------------------------------------------------

    def _ocr_image(self, path: str, workdir: str, run: _Run) -> None:
        # Imported here: only children that meet an image pay for Pillow.
        from PIL import Image, ImageOps, UnidentifiedImageError

        # Our own check below reads the size from the header, before decoding,
        # and says so in our words; the child's RLIMIT_DATA stays the backstop.
        Image.MAX_IMAGE_PIXELS = None
        try:
            image = Image.open(path)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
            raise _Refused("parse_error", f"unreadable image: {err}") from err
        with image:
            frames = getattr(image, "n_frames", 1)
            run.pages_total = frames
            dpi = _image_dpi(image.info.get("dpi"), self.config.dpi)
            batch: list[_Page] = []
            for number in range(min(frames, self.config.max_pages)):
                run.remaining()
                width, height = image.size if number == 0 else _seek(image, number)
                if width * height > self.config.max_pixels:
                    raise _Refused(
                        "limit_exceeded",
                        f"image too large for OCR: {width}×{height} pixels "
                        f"(limit {self.config.max_pixels:,})",
                    )
                page_path = os.path.join(workdir, f"page-{number:04d}.pgm")
                try:
                    # Phone photos of paper are stored sideways with an EXIF
                    # orientation; tesseract reads only upright lines.
                    upright = ImageOps.exif_transpose(image) if number == 0 else image
                    upright.convert("L").save(page_path)
                except (OSError, ValueError, SyntaxError, EOFError) as err:
                    if run.pages_done or batch:
                        run.truncated = True
                        break
                    raise _Refused("parse_error", f"unreadable image: {err}") from err
                batch.append(_Page(page_path, dpi))
                if len(batch) == PAGES_PER_BATCH:
                    self._recognise(batch, workdir, run)
                    batch = []
            if batch:
                self._recognise(batch, workdir, run)
            if frames > self.config.max_pages:
                run.truncated = True

    # -- PDFs ---------------------------------------------------------------------------

    def _ocr_pdf(self, path: str, workdir: str, run: _Run) -> None:
        sizes, pages = self._pdf_page_sizes(path, run)
        run.pages_total = pages
        if pages > len(sizes):
            run.truncated = True
        for first in range(0, len(sizes), PAGES_PER_BATCH):
            chunk = sizes[first : first + PAGES_PER_BATCH]
            batch = [
                page
                for number, (width_pt, height_pt) in enumerate(chunk, start=first + 1)
                for page in self._render_page(path, number, width_pt, height_pt, workdir, run)
            ]
            if batch:
                self._recognise(batch, workdir, run)

    def _pdf_page_sizes(self, path: str, run: _Run) -> tuple[list[tuple[float, float]], int]:
        """Sizes in points of the first `max_pages` pages, and the page count."""
        last = str(self.config.max_pages)
        result = self._run_tool([self.config.pdfinfo, "-f", "1", "-l", last, path], run, "pdfinfo")
        if result.returncode != 0:
            raise _Refused("parse_error", f"pdfinfo cannot read the PDF: {_tail(result.stderr)}")
        total = _PAGES.search(result.stdout)
        sizes = [(float(w), float(h)) for _n, w, h in _PAGE_SIZE.findall(result.stdout)]
        pages = int(total.group(1)) if total else len(sizes)
        return sizes[: self.config.max_pages], pages

    def _render_page(
        self, path: str, number: int, width_pt: float, height_pt: float, workdir: str, run: _Run
    ) -> list[_Page]:
        # The resolution that keeps the page under the pixel cap (a PDF page can
        # declare any size: 200 inches square at 300 dpi would be 3.6 billion pixels).
        area_inches = max(width_pt * height_pt, 1.0) / (72.0 * 72.0)
        dpi = min(self.config.dpi, int(math.sqrt(self.config.max_pixels / area_inches)))
        if dpi < MIN_DPI:
            return []  # a poster-sized page: nothing legible at this cap
        prefix = os.path.join(workdir, f"page-{number:04d}")
        result = self._run_tool(
            [
                self.config.pdftoppm,
                "-gray",
                "-r",
                str(dpi),
                "-f",
                str(number),
                "-l",
                str(number),
                "-singlefile",
                path,
                prefix,
            ],
            run,
            "pdftoppm",
        )
        if result.returncode != 0 or not os.path.exists(prefix + ".pgm"):
            return []  # a broken page: OCR the others
        return [_Page(prefix + ".pgm", dpi)]

    # -- tesseract ----------------------------------------------------------------------

    def _recognise(self, batch: list[_Page], workdir: str, run: _Run) -> None:
        """OCR `batch` (one tesseract process per resolution), then delete its files."""
        try:
            for dpi in sorted({page.dpi for page in batch}):
                same = [page.path for page in batch if page.dpi == dpi]
                listing = os.path.join(workdir, "pages.txt")
                with open(listing, "w", encoding="utf-8") as handle:
                    handle.write("\n".join(same) + "\n")
                result = self._run_tool(
                    [
                        self.config.tesseract,
                        listing,
                        "stdout",
                        "-l",
                        self.config.languages,
                        "--dpi",
                        str(dpi),
                        # "A single column of text of variable sizes": the default
                        # automatic layout (3) drops large Korean headings (titles!)
                        # as if they were pictures; 4 keeps them and is faster.
                        # Columns come out side by side, which search does not mind.
                        "--psm",
                        "4",
                    ],
                    run,
                    "tesseract",
                )
                if result.returncode != 0:
                    self._tesseract_failed(result, run)
                    return
                text = result.stdout.decode("utf-8", "replace").replace("\f", "\n\n")
                text = _SPACE_RUN.sub(" ", text).strip()
                self._add_text(text, len(same), run)
        finally:
            for page in batch:
                with contextlib.suppress(OSError):
                    os.unlink(page.path)

    def _tesseract_failed(self, result: subprocess.CompletedProcess[bytes], run: _Run) -> None:
        message = _tail(result.stderr)
        if _OUT_OF_MEMORY.search(message) or result.returncode in (-6, 134):
            limit = self.config.memory_limit_bytes // (1024 * 1024)
            reason = f"memory: OCR needed more than {limit} MiB"
            status: OcrStatus = "limit_exceeded"
        else:
            reason = f"OCR failed (tesseract exit {result.returncode}): {message}"
            status = "parse_error"
        if run.pages_done:
            run.truncated = True
            raise _Deadline  # keep the pages recognised so far
        raise _Refused(status, reason)

    def _add_text(self, text: str, pages: int, run: _Run) -> None:
        run.pages_done += pages
        room = run.max_chars + 1 - run.chars
        if len(text) > room:
            text = text[: max(room, 0)]
            run.truncated = True
        run.texts.append(text)
        run.chars += len(text) + 2

    def _run_tool(
        self, command: list[str], run: _Run, name: str
    ) -> subprocess.CompletedProcess[bytes]:
        timeout = run.remaining()
        if self._prlimit and self.config.memory_limit_bytes:
            limit = str(self.config.memory_limit_bytes)
            command = [self._prlimit, f"--data={limit}:{limit}", "--", *command]
        if self._setpriv:
            # Killed with the extraction child (which is killed with the server):
            # nothing else would stop the tool once the child's own timeout is gone.
            command = [self._setpriv, "--pdeathsig", "KILL", "--", *command]
        try:
            # Our configured programs; the file is the only input, passed as a path.
            return subprocess.run(  # noqa: S603
                command,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
                env=self._env,
                check=False,
            )
        except subprocess.TimeoutExpired:
            raise _Deadline from None
        except OSError as err:
            raise _Refused("unavailable", f"{name} does not run: {err}") from err


def _pdeathsig_wrapper(setpriv: str) -> str | None:
    """`setpriv`'s path if it can set the parent-death signal (util-linux 2.33+)."""
    program = shutil.which(setpriv)
    if program is None:
        return None
    try:
        # Our configured program, fixed arguments.
        usage = subprocess.run(  # noqa: S603
            [program, "--help"], capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return program if b"--pdeathsig" in usage.stdout else None


def _seek(image: Any, number: int) -> tuple[int, int]:
    image.seek(number)
    width, height = image.size
    return int(width), int(height)


def _image_dpi(value: object, default: int) -> int:
    """The image's own resolution when it is plausible, else `default`."""
    if isinstance(value, tuple) and value:
        try:
            dpi = round(float(value[0]))
        except (TypeError, ValueError):
            return default
        if 70 <= dpi <= 1200:
            return dpi
    return default


def _tail(stderr: bytes, limit: int = 160) -> str:
    lines = [line.strip() for line in stderr.decode("utf-8", "replace").splitlines()]
    lines = [line for line in lines if line and not line.startswith("Estimating resolution")]
    return " / ".join(lines)[-limit:] or "no message"


def _since(started: float) -> float:
    return round(time.monotonic() - started, 3)
