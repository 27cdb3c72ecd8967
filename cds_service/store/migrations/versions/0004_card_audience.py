"""Each card shown is kept with who it was shown to (the verified issuer and the token's tenant;
both empty for anonymous calls), so feedback is accepted only from that same caller: a token
of tenant B can no longer override tenant A's cards. Cards shown before this revision were
shown to an unknown caller and keep empty values (feedback on them is taken from anonymous
callers only).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_shown") as batch:
        batch.add_column(sa.Column("issuer", sa.String(500), nullable=False, server_default=""))
        batch.add_column(sa.Column("tenant", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    with op.batch_alter_table("card_shown") as batch:
        batch.drop_column("tenant")
        batch.drop_column("issuer")
