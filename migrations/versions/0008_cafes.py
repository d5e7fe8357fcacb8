"""Cafe profiles (timezone, contact, per-language status texts); order details (items, total, eta, pickup code);
orders without a status (a backend's message before the first status)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('horecas', schema=None) as batch_op:
        batch_op.add_column(sa.Column('timezone', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('contact', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('texts', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('profile_updated_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.alter_column('status', existing_type=sa.String(length=16), nullable=True)
        batch_op.add_column(sa.Column('items', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('total', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('eta', sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column('pickup_code', sa.String(length=16), nullable=True))


def downgrade():
    # The older schema has no order without a status: such orders (a message, never a status) read as created,
    # not cancellable (their messages and outbox rows stay).
    orders = sa.table('orders', sa.column('status', sa.String(16)), sa.column('cancellable', sa.Boolean()))
    op.get_bind().execute(
        sa.update(orders).where(orders.c.status.is_(None)).values(status='created', cancellable=False)
    )
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_column('pickup_code')
        batch_op.drop_column('eta')
        batch_op.drop_column('total')
        batch_op.drop_column('items')
        batch_op.alter_column('status', existing_type=sa.String(length=16), nullable=False)
    with op.batch_alter_table('horecas', schema=None) as batch_op:
        batch_op.drop_column('profile_updated_at')
        batch_op.drop_column('texts')
        batch_op.drop_column('contact')
        batch_op.drop_column('timezone')
