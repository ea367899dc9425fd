"""The catalog: organisation, document metadata, versions, ACLs, the outbox and the audit log.

`ports.py` says what each repository does and when a unit of work is needed;
`sql/` implements them with SQLAlchemy over SQLite (embedded) or PostgreSQL
(scale-out), migrated with Alembic.
"""
