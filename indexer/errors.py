"""Errors raised by the indexer layer."""


class IndexerError(Exception):
    """Base class for indexer failures."""


class ExtractionUnavailableError(IndexerError):
    """The extraction service cannot be used now (transient: retry later).

    A bad *document* never raises this: it yields an `Extraction` with a failure status.
    """


class SearchUnavailableError(IndexerError):
    """The search index cannot be reached now (transient: retry later)."""


class InvalidQueryError(IndexerError):
    """The search request is out of range or malformed (maps to HTTP 400)."""


class AnalysisConfigError(IndexerError):
    """A user dictionary or synonyms file cannot be read or parsed (fix the file)."""


class IndexBusyError(SearchUnavailableError):
    """Another process holds the index's writer (the embedded index has one): the
    work must be asked of that process (e.g. `crossdoc reindex` of the server)."""


class RebuildInProgressError(IndexerError):
    """A rebuild of the index is already under way (or was interrupted: see its message)."""
