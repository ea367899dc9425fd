"""Relevance of Korean search on the judged test set (tests/relevance): recall@10, nDCG@10.

python -m bench.relevance            # shipped user dictionary and synonyms
python -m bench.relevance --plain    # also mecab alone, no synonyms, for comparison
"""

from __future__ import annotations

import argparse
import time

from indexer.analysis.korean import KoreanAnalyzer
from tests.relevance.evaluate import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plain", action="store_true", help="also run without dictionary/synonyms")
    args = parser.parse_args()
    started = time.perf_counter()
    result = evaluate()
    print(result.report())
    print(f"(indexed and searched in {time.perf_counter() - started:.1f} s)")
    if args.plain:
        plain = evaluate(KoreanAnalyzer(), use_synonyms=False)
        print("\nwithout the user dictionary and synonyms:")
        print(plain.report())


if __name__ == "__main__":
    main()
