"""Cards recorded as shown silently: in a silent pilot (`[cards] silent`, or a rule's own
`silent` setting) the rules run and their cards are recorded, but the EHR gets none of them. The
report counts them apart ("would have fired"), so a pilot measures firing rates before any
clinician sees a card. Cards recorded before this revision were all shown.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("card_shown") as batch:
        batch.add_column(sa.Column("silent", sa.Boolean(), nullable=False,
                                   server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("card_shown") as batch:
        batch.drop_column("silent")
