"""The task queue port: telling workers that the outbox has new rows.

The outbox in the catalog is the record of work; a dispatcher only makes workers
pick it up sooner. Losing a notification costs latency, never work: the worker
(or the reconciler, with Celery) finds every due row on its next pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable


@runtime_checkable
class Dispatcher(Protocol):
    """Built by the API's composition root (`crossdoc.wiring.api`); always present."""

    def start(self) -> None:
        """Begin delivering (the in-process worker starts its threads); idempotent."""
        ...

    def notify(self, document_ids: Sequence[str]) -> None:
        """Called after the catalog commit that wrote outbox rows for these documents.

        Never raises: a broker outage is logged and left to the reconciler.
        """
        ...

    def ping(self) -> None:
        """Raise unless the queue answers (for /readyz)."""
        ...

    def close(self) -> None:
        """Stop delivering and release what `start` took; safe to call twice."""
        ...
