"""Relevance of Korean search on the judged test set (tests/relevance): recall@10, nDCG@10.

python -m bench.relevance            # shipped user dictionary and synonyms
python -m bench.relevance --plain    # also mecab alone, no synonyms, for comparison
python -m bench.relevance --independent   # the set judged without the analyser,
                                          # morphology alone and with the compound fallback
python -m bench.relevance --elasticsearch http://127.0.0.1:9250   # both sets on
                                          # Elasticsearch/OpenSearch beside Tantivy
"""

from __future__ import annotations

import time

from bench.options import bench_parser
from indexer.analysis.korean import KoreanAnalyzer
from tests.relevance.evaluate import evaluate, evaluate_independent


def main() -> None:
    parser = bench_parser(__doc__)
    parser.add_argument("--plain", action="store_true", help="also run without dictionary/synonyms")
    parser.add_argument(
        "--independent", action="store_true", help="the independently judged set (both ways)"
    )
    parser.add_argument(
        "--elasticsearch",
        metavar="URL",
        help="run both sets on Tantivy and on the Elasticsearch/OpenSearch node at URL",
    )
    args = parser.parse_args()
    if args.elasticsearch:
        for name, url in (("tantivy", None), ("elasticsearch", args.elasticsearch)):
            started = time.perf_counter()
            judged = evaluate(elasticsearch_url=url).report().splitlines()[1]
            independent = evaluate_independent(elasticsearch_url=url)
            print(f"{name:<14} judged: {judged}   independent: ", end="")
            print(f"{independent.report(misses=False).splitlines()[1]}", end="")
            print(f"   ({time.perf_counter() - started:.1f} s)")
        return
    if args.independent:
        for fallback in (False, True):
            started = time.perf_counter()
            result = evaluate_independent(compound_fallback=fallback)
            print("with the compound fallback:" if fallback else "morphology alone:")
            print(result.report(misses=False))
            print(f"(indexed and searched in {time.perf_counter() - started:.1f} s)\n")
        return
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
