"""customers.reachable_at (the bot has proof it can write to them); code_attempts by time (the limit across users)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03 10:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

customers = sa.table(
    'customers',
    sa.column('linked_at', sa.DateTime()),
    sa.column('reachable_at', sa.DateTime()),
)


def upgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reachable_at', sa.DateTime(), nullable=True))
    with op.batch_alter_table('code_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_code_attempts_time', ['created_at'], unique=False)

    # Customers linked before this version were reported subscribed: they stay so. Whoever never started the
    # bot shows up with the first "400 chat not found", which clears reachable_at again.
    op.get_bind().execute(
        sa.update(customers).where(customers.c.linked_at.is_not(None)).values(reachable_at=customers.c.linked_at)
    )


def downgrade():
    with op.batch_alter_table('code_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_code_attempts_time')
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_column('reachable_at')
