"""The key of the patient hashes is no longer kept beside them: the table that held a key the
deployment made for itself is dropped (with it, hashes made with that key can no longer be
walked back to patient ids). The key now comes from configuration only.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_table("service_secret")


def downgrade() -> None:
    op.create_table(
        "service_secret",
        sa.Column("name", sa.String(50), primary_key=True),
        sa.Column("value", sa.String(128), nullable=False),
    )
