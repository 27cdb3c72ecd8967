"""Replay cache, cards shown, feedback.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "jwt_replay",
        sa.Column("token_key", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_jwt_replay_expires_at", "jwt_replay", ["expires_at"])
    op.create_table(
        "card_shown",
        sa.Column("card_uuid", sa.String(36), primary_key=True),
        sa.Column("rule_id", sa.String(100), nullable=False),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("hook", sa.String(40), nullable=False),
        sa.Column("indicator", sa.String(10), nullable=False),
        sa.Column("hook_instance", sa.String(200), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("patient_hash", sa.String(64), nullable=True),
    )
    op.create_index("ix_card_shown_rule_id", "card_shown", ["rule_id"])
    op.create_index("ix_card_shown_shown_at", "card_shown", ["shown_at"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("item_key", sa.String(64), nullable=False, unique=True),
        sa.Column("service_id", sa.String(100), nullable=False),
        sa.Column("card_uuid", sa.String(100), nullable=False),
        sa.Column("known_card", sa.Boolean, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accepted_suggestions", sa.Text, nullable=True),
        sa.Column("override_system", sa.String(500), nullable=True),
        sa.Column("override_code", sa.String(200), nullable=True),
        sa.Column("override_display", sa.String(500), nullable=True),
        sa.Column("user_comment", sa.Text, nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_feedback_card_uuid", "feedback", ["card_uuid"])


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("card_shown")
    op.drop_table("jwt_replay")
