"""Korean + English text analysis: the mecab-ko analyser, query terms and highlighting."""

from indexer.analysis.korean import AnalysisMode, KoreanAnalyzer, Token

__all__ = ["AnalysisMode", "KoreanAnalyzer", "Token"]
