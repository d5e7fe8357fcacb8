"""Several bot processes on one PostgreSQL: who polls each bot, and the send budget they share

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('bot_heartbeats', schema=None) as batch_op:
        batch_op.add_column(sa.Column('poller', sa.String(length=256), nullable=True))
    # Times are seconds since the epoch by the database server's clock, so machines need not agree on theirs.
    op.create_table(
        'send_budgets',
        sa.Column('bot', sa.String(length=32), nullable=False),
        sa.Column('next_slot', sa.Float(), nullable=False),
        sa.Column('paused_until', sa.Float(), nullable=False),
        sa.Column('last_grant', sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint('bot'),
    )
    op.create_table(
        'send_chat_slots',
        sa.Column('bot', sa.String(length=32), nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=False),
        sa.Column('next_at', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('bot', 'chat_id'),
    )


def downgrade():
    op.drop_table('send_chat_slots')
    op.drop_table('send_budgets')
    with op.batch_alter_table('bot_heartbeats', schema=None) as batch_op:
        batch_op.drop_column('poller')
