"""Errors the services raise beyond the storage and auth ones."""

from __future__ import annotations


class InvalidChangeError(ValueError):
    """A change names something that does not exist (a department, a ministry, a
    principal); nothing was written. The message starts with the field at fault,
    e.g. ``department: no department D9``."""
