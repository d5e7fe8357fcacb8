"""indexes the retention job needs: foreign keys into outbox and orders, and orders by last update

Deleting an outbox row or an order makes PostgreSQL look for dialog messages pointing to it: without an index
on dialog_messages.outbox_id and .order_pk that is a scan of the whole table per deleted row. The retention job
picks orders past the window by updated_at.

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-01 05:30:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.create_index('ix_dialog_messages_outbox', ['outbox_id'], unique=False)
        batch_op.create_index('ix_dialog_messages_order', ['order_pk'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_updated', ['updated_at'], unique=False)


def downgrade():
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_updated')
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_dialog_messages_order')
        batch_op.drop_index('ix_dialog_messages_outbox')
