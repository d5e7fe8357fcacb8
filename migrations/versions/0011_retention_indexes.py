"""indexes for a big history: foreign keys the retention job deletes through, orders by last update, active outbox rows

Deleting an outbox row or an order makes PostgreSQL look for dialog messages pointing to it: without an index
on dialog_messages.outbox_id and .order_pk that is a scan of the whole table per deleted row. The retention job
picks orders past the window by updated_at. The delivery claim asks, for each due row, whether an older row of
its order (or chat) is still pending or sending: two partial indexes hold only those active rows, so the answer
does not depend on the table's size or on how fresh its statistics are (on bench/history.py's database of
4 M sent rows with 1,000 pending: 0.8-1.2 s per claim without them, 20-50 ms with them).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 05:30:00

"""
from alembic import op
import sqlalchemy as sa

ACTIVE = "state IN ('pending', 'sending')"
# Rows without an order only: with stale statistics PostgreSQL otherwise picked this index for the order's question too.
ACTIVE_CHAT = ACTIVE + " AND order_pk IS NULL"


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.create_index('ix_dialog_messages_outbox', ['outbox_id'], unique=False)
        batch_op.create_index('ix_dialog_messages_order', ['order_pk'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_updated', ['updated_at'], unique=False)
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('ix_outbox_active_order', ['order_pk', 'id'], unique=False,
                              sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
        batch_op.create_index('ix_outbox_active_chat', ['bot', 'chat_id', 'id'], unique=False,
                              sqlite_where=sa.text(ACTIVE_CHAT), postgresql_where=sa.text(ACTIVE_CHAT))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_active_chat', sqlite_where=sa.text(ACTIVE_CHAT), postgresql_where=sa.text(ACTIVE_CHAT))
        batch_op.drop_index('ix_outbox_active_order', sqlite_where=sa.text(ACTIVE), postgresql_where=sa.text(ACTIVE))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_updated')
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_dialog_messages_order')
        batch_op.drop_index('ix_dialog_messages_outbox')
