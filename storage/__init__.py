"""System of record: original bytes (object store) and metadata, ACL and outbox (catalog).

Imports nothing else of Crossdoc's.
"""
