"""Text extraction port and adapters."""

from indexer.extraction.base import Extraction, ExtractionStatus, TextExtractor

__all__ = ["Extraction", "ExtractionStatus", "TextExtractor"]
