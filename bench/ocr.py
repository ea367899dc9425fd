"""OCR speed: seconds per page for rendered A4 pages at 300 dpi, through the real extractor.

    python -m bench.ocr --pages 3 --runs 2

Draws A4 pages (2480×3508 pixels, 300 dpi) of Korean and English body text at
11 pt with a title at 24 pt (Debian's fonts-nanum), then times
`NativeTikaExtractor.extract` (child process, Tika, then tesseract kor+eng)
on one page as PNG and on a multi-page image-only PDF (poppler renders it at
300 dpi). Also prints the share of the drawn words found in the text.
"""

from __future__ import annotations

import io
import os
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from bench.options import bench_parser
from indexer.extraction.native import NativeTikaExtractor
from indexer.extraction.ocr import OcrConfig, probe_engine

FONTS = Path("/usr/share/fonts/truetype/nanum")
A4_300DPI = (2480, 3508)
TITLE = "출생통보제 및 보호출산제 시행 안내"
BODY = (
    "의료기관은 아동이 출생하면 출생 정보를 건강보험심사평가원에 통보하여야 합니다.",
    "지방자치단체는 통보받은 출생 정보로 출생신고 여부를 확인하고 신고를 독려합니다.",
    "Hospitals notify the birth of every child within fourteen days of delivery.",
    "위기 임산부는 상담을 거쳐 가명으로 의료기관에서 출산할 수 있습니다.",
)


def render_a4(page_number: int) -> Image.Image:
    title_font = ImageFont.truetype(str(FONTS / "NanumGothicBold.ttf"), 100)  # 24 pt
    body_font = ImageFont.truetype(str(FONTS / "NanumMyeongjo.ttf"), 46)  # 11 pt
    page = Image.new("L", A4_300DPI, 255)
    draw = ImageDraw.Draw(page)
    draw.text((240, 250), f"{TITLE} ({page_number})", font=title_font, fill=0)
    y = 480
    line = 0
    while y < A4_300DPI[1] - 300:
        draw.text((240, y), BODY[line % len(BODY)], font=body_font, fill=0)
        y += 78
        line += 1
    return page


def found_share(text: str) -> float:
    words = {word for line in (TITLE, *BODY) for word in line.rstrip(".").split()}
    return sum(1 for word in words if word in text) / len(words)


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--pages", type=int, default=3, help="pages of the PDF")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    config = OcrConfig()
    probe = probe_engine(config)
    if not probe.available:
        raise SystemExit(f"OCR unavailable: {probe.reason}")
    work = Path(tempfile.mkdtemp(prefix="crossdoc-ocr-bench-"))
    pages = [render_a4(number + 1) for number in range(args.pages)]
    png = work / "page.png"
    pages[0].save(png, dpi=(300, 300))
    pdf = work / "scan.pdf"
    buffer = io.BytesIO()
    pages[0].save(buffer, format="PDF", resolution=300.0, save_all=True, append_images=pages[1:])
    pdf.write_bytes(buffer.getvalue())
    # CPU time of tesseract alone on the page, as the child runs it: a figure
    # that does not depend on how busy the machine is (wall time does).
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        ["tesseract", str(png), "-", "-l", config.languages, "--dpi", "300", "--psm", "4"],
        env=dict(os.environ, OMP_THREAD_LIMIT="1"),
        capture_output=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"ocr a4_300dpi tesseract alone: cpu={cpu:.2f} s/page (1 thread)")
    with NativeTikaExtractor(ocr=config) as extractor:
        extractor.ping()
        for label, path, count in (("png", png, 1), ("pdf", pdf, args.pages)):
            timings = []
            for _ in range(args.runs):
                started = time.perf_counter()
                result = extractor.extract(path)
                timings.append(time.perf_counter() - started)
                assert result.status_detail == "ocr", result.status_detail
            best = min(timings)
            print(
                f"ocr a4_300dpi {label}: pages={count} tesseract={probe.version} "
                f"lang={config.languages} best={best / count:.2f} s/page "
                f"median={statistics.median(timings) / count:.2f} s/page "
                f"words_found={found_share(result.text):.0%} chars={len(result.text)} "
                f"load_avg={os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
