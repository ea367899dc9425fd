"""Derived data: text extraction, Korean analysis, the search index and the workers that fill it.

Everything here can be rebuilt from the system of record (`storage`) at any time.
"""
