"""The service layer: what HTTP routes, the CLI and worker tasks call.

Each operation is one unit of work (the change, its audit record and its outbox
row commit together) and notifies the index worker after the commit. Services
import storage and indexer ports, never the web package.
"""
