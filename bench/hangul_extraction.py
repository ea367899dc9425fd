"""Hangul (HWP 5 / HWPX) text extraction on the shared corpus: our reader against two PyPI parsers.

    python -m bench.hangul_extraction [--mutants N] [--corpus PATH]

For every file of `../shared/corpus/hangul/` it runs

- `crossdoc`: our extractor as the project runs it (NativeTikaExtractor, the
  sandboxed child process, which hands HWP 5 / HWPX to indexer.extraction.hangul);
- `hwp-hwpx-parser` (`Reader(path).text`) and `extract-hwp`
  (`extract_text_from_hwp(path)`), in this process, when installed
  (`pip install '.[bench]'`);

and sorts each outcome: `text` (real words), `placeholder` (only markers such
as "[IMAGE]", "[^1]" or empty Markdown table cells, which hwp-hwpx-parser
emits), `empty`, `error`, `timeout`. It prints the counts per tool, the
counts against the manifest's `reference_outcome` column (what
hwp-hwpx-parser gave when the manifest was made), the files where the tools
disagree, and the time per file.

`--mutants N` also feeds each tool N corrupted copies of every file
(truncated, bytes flipped in the middle), to count crashes and hangs.
Prints figures; asserts nothing.
"""

from __future__ import annotations

import csv
import importlib.util
import random
import re
import signal
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from bench.options import bench_parser
from indexer.extraction.base import ExtractionStatus
from indexer.extraction.native import NativeTikaExtractor

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
TIMEOUT_SECONDS = 20

_PLACEHOLDERS = re.compile(r"\[IMAGE\]|\[\^e?\d+\]|\||-{3,}")


def kind_of_text(text: str) -> str:
    """`text` when real words remain after removing parsers' markers, else placeholder/empty."""
    if not text.strip():
        return "empty"
    return "text" if re.search(r"\w", _PLACEHOLDERS.sub(" ", text)) else "placeholder"


class _Timeout(Exception):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise _Timeout


def run_in_process(function: Callable[[Path], str], path: Path) -> tuple[str, str, float]:
    """(outcome, text, seconds) of one library call, stopped after TIMEOUT_SECONDS."""
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(TIMEOUT_SECONDS)
    started = time.perf_counter()
    try:
        text = function(path)
        outcome = kind_of_text(text)
    except _Timeout:
        text, outcome = "", "timeout"
    except Exception as err:
        text, outcome = "", f"error:{type(err).__name__}"
    finally:
        signal.alarm(0)
    return outcome, text, time.perf_counter() - started


def read_with_hwp_hwpx_parser(path: Path) -> str:
    from hwp_hwpx_parser import Reader  # type: ignore[import-not-found]

    with Reader(str(path)) as reader:
        return str(reader.text)


def read_with_extract_hwp(path: Path) -> str:
    from extract_hwp import extract_text_from_hwp  # type: ignore[import-not-found]

    text, error = extract_text_from_hwp(str(path))
    if error and not text:
        raise RuntimeError(error)
    return str(text)


def available_libraries() -> dict[str, Callable[[Path], str]]:
    tools: dict[str, Callable[[Path], str]] = {}
    for name, module, function in (
        ("hwp-hwpx-parser", "hwp_hwpx_parser", read_with_hwp_hwpx_parser),
        ("extract-hwp", "extract_hwp", read_with_extract_hwp),
    ):
        if importlib.util.find_spec(module) is None:
            print(f"{name} not installed: skipped (pip install '.[bench]')")
        else:
            tools[name] = function
    return tools


def _is_distribution(path: Path) -> bool:
    from indexer.extraction.hangul.hwp5 import FILE_HEADER, FLAG_DISTRIBUTION, olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            header = ole.openstream(FILE_HEADER).read(40)
    except Exception:
        return False
    return len(header) >= 40 and bool(int.from_bytes(header[36:40], "little") & FLAG_DISTRIBUTION)


def run_crossdoc(extractor: NativeTikaExtractor, path: Path) -> tuple[str, str, float]:
    started = time.perf_counter()
    result = extractor.extract(path, filename=path.name)
    seconds = time.perf_counter() - started
    if result.status is ExtractionStatus.OK:
        return kind_of_text(result.text), result.text, seconds
    if result.status is ExtractionStatus.EMPTY:
        return "empty", "", seconds
    return f"{result.status.value}", "", seconds


def mutants(path: Path, count: int, workdir: Path, rng: random.Random) -> list[Path]:
    data = path.read_bytes()
    out: list[Path] = []
    for number in range(count):
        mutated = bytearray(data)
        if number % 2 == 0:
            mutated = mutated[: max(1, len(mutated) * (number + 1) // (count + 1))]
        else:
            for _ in range(16):
                position = rng.randrange(len(mutated) // 4, len(mutated))
                mutated[position] = rng.randrange(256)
        target = workdir / f"m{number}-{path.name}"
        target.write_bytes(bytes(mutated))
        out.append(target)
    return out


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--mutants", type=int, default=0, help="corrupted copies per file")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    args = parser.parse_args()
    hangul_dir = args.corpus / "hangul"
    manifest_path = args.corpus / "HANGUL_MANIFEST.tsv"
    if not hangul_dir.is_dir() or not manifest_path.is_file():
        print(f"the Hangul corpus is not at {hangul_dir}: nothing to measure")
        sys.exit(0)
    with manifest_path.open(encoding="utf-8", newline="") as handle:
        manifest = {
            row["file"]: row
            for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        }
    files = sorted(path for path in hangul_dir.iterdir() if path.is_file())
    libraries = available_libraries()
    tools = ["crossdoc", *libraries]
    outcomes: dict[str, dict[str, str]] = {tool: {} for tool in tools}
    openings: dict[str, dict[str, str]] = {tool: {} for tool in tools}
    seconds: dict[str, list[float]] = {tool: [] for tool in tools}

    with NativeTikaExtractor(timeout_seconds=TIMEOUT_SECONDS) as extractor:
        extractor.extract(files[0])  # start the child outside the clock
        for path in files:
            outcome, text, spent = run_crossdoc(extractor, path)
            outcomes["crossdoc"][path.name] = outcome
            openings["crossdoc"][path.name] = " ".join(text.split())[:45]
            seconds["crossdoc"].append(spent)
            for name, function in libraries.items():
                outcome, text, spent = run_in_process(function, path)
                outcomes[name][path.name] = outcome
                openings[name][path.name] = " ".join(text.split())[:45]
                seconds[name].append(spent)

        reference = {
            name: (
                kind_of_text(row["reference_text_prefix"])
                if row["reference_outcome"] == "text"
                else row["reference_outcome"]
            )
            for name, row in manifest.items()
        }
        ref_counts = Counter(row["reference_outcome"] for row in manifest.values())
        print(f"\n{len(files)} files in {hangul_dir}")
        print(
            "manifest reference_outcome: "
            + ", ".join(f"{key}={value}" for key, value in sorted(ref_counts.items()))
            + "; of its 'text': "
            + ", ".join(
                f"{key}={value}"
                for key, value in sorted(
                    Counter(
                        reference[name]
                        for name, row in manifest.items()
                        if row["reference_outcome"] == "text"
                    ).items()
                )
            )
        )
        print(
            "manifest tika_outcome: "
            + ", ".join(
                f"{key}={value}"
                for key, value in sorted(
                    Counter(row["tika_outcome"] for row in manifest.values()).items()
                )
            )
        )
        print("\noutcomes per tool (text = real words; placeholder = only [IMAGE]/table markers):")
        for tool in tools:
            counts = Counter(outcomes[tool].values())
            print(f"  {tool:16} " + ", ".join(f"{k}={v}" for k, v in sorted(counts.items())))

        print("\nagainst the manifest's reference column (reference kind -> tool outcome):")
        for tool in tools:
            pairs = Counter(
                f"{reference.get(name, '?')}->{outcome}" for name, outcome in outcomes[tool].items()
            )
            print(f"  {tool:16} " + ", ".join(f"{k}={v}" for k, v in sorted(pairs.items())))
            missed = [
                name
                for name, outcome in outcomes[tool].items()
                if reference.get(name) == "text" and outcome != "text"
            ]
            if missed:
                print(f"  {'':16} reference has words, {tool} has none: {', '.join(missed)}")

        print("\nfiles where the tools disagree:")
        for path in files:
            seen = {tool: outcomes[tool][path.name] for tool in tools}
            if len(set(seen.values())) > 1:
                print(f"  {path.name}: " + ", ".join(f"{t}={o}" for t, o in seen.items()))

        print("\ndistribution-protected (배포용) files, first words per tool:")
        for path in files:
            if path.suffix.lower() == ".hwp" and _is_distribution(path):
                print(f"  {path.name}:")
                for tool in tools:
                    print(f"    {tool:16} {openings[tool][path.name]!r}")

        print("\ntime per file (ms): median / p95 / max / total s")
        for tool in tools:
            values = sorted(seconds[tool])
            p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
            print(
                f"  {tool:16} {statistics.median(values) * 1000:7.1f} / {p95 * 1000:7.1f} / "
                f"{values[-1] * 1000:7.1f} / {sum(values):.2f}"
                + ("   (through the child process)" if tool == "crossdoc" else "")
            )

        if args.mutants > 0:
            rng = random.Random(20261124)
            robustness: dict[str, Counter[str]] = {tool: Counter() for tool in tools}
            slowest: dict[str, float] = dict.fromkeys(tools, 0.0)
            with tempfile.TemporaryDirectory() as workdir:
                for path in files:
                    for mutant in mutants(path, args.mutants, Path(workdir), rng):
                        outcome, _text, spent = run_crossdoc(extractor, mutant)
                        robustness["crossdoc"][outcome.split(":")[0]] += 1
                        slowest["crossdoc"] = max(slowest["crossdoc"], spent)
                        for name, function in libraries.items():
                            outcome, _text, spent = run_in_process(function, mutant)
                            robustness[name][outcome.split(":")[0]] += 1
                            slowest[name] = max(slowest[name], spent)
            total = len(files) * args.mutants
            print(f"\n{total} corrupted copies (truncated / 16 bytes flipped): outcomes, slowest")
            for tool in tools:
                counts = robustness[tool]
                print(
                    f"  {tool:16} "
                    + ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
                    + f"; slowest {slowest[tool] * 1000:.0f} ms"
                )
            print(
                "  (error = the library raised: our extractor turns every such case into a"
                " status; timeout = still running after"
                f" {TIMEOUT_SECONDS} s)"
            )


if __name__ == "__main__":
    main()
