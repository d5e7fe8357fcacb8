"""staff_states: the number of the newest prompt and how it ended (stale prompt buttons answer instead of acting)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01 04:00:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('staff_states', schema=None) as batch_op:
        batch_op.add_column(sa.Column('prompt_no', sa.Integer(), server_default=sa.text('0'), nullable=False))
        batch_op.add_column(sa.Column('prompt_end', sa.String(length=16), nullable=True))


def downgrade():
    with op.batch_alter_table('staff_states', schema=None) as batch_op:
        batch_op.drop_column('prompt_end')
        batch_op.drop_column('prompt_no')
