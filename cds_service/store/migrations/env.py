"""Alembic environment: runs on the connection the service hands it (see store.migrate).

The whole upgrade is one transaction, opened here, so a failure rolls all of it back. That
holds on SQLite too: store.migrate hands over a connection whose driver leaves transactions to
SQLAlchemy and whose BEGIN is BEGIN IMMEDIATE (see store._migration_engine), so CREATE TABLE is
transactional and one worker migrates at a time.
"""

from alembic import context

from cds_service.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                  transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
