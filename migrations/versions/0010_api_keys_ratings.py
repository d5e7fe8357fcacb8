"""api_keys (keys scoped to cafes, stored hashed); order_ratings (a customer's 1-5 rating of a completed order)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'api_keys',
        sa.Column('id', sa.String(length=32), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('key_hash', sa.String(length=64), nullable=False),
        sa.Column('horeca_ids', sa.Text(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_table(
        'order_ratings',
        sa.Column('id', BigId, nullable=False),
        sa.Column('order_pk', BigId, nullable=False),
        sa.Column('telegram_user_id', sa.BigInteger(), nullable=False),
        sa.Column('value', sa.Integer(), nullable=False),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('rated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('comment_until', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['order_pk'], ['orders.id']),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('order_pk', name='uq_order_ratings_order'),
    )
    with op.batch_alter_table('order_ratings', schema=None) as batch_op:
        batch_op.create_index('ix_order_ratings_comment', ['telegram_user_id', 'comment_until'], unique=False)


def downgrade():
    with op.batch_alter_table('order_ratings', schema=None) as batch_op:
        batch_op.drop_index('ix_order_ratings_comment')
    op.drop_table('order_ratings')
    op.drop_table('api_keys')
