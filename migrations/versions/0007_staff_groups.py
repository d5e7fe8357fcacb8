"""staff groups: a linked Telegram supergroup per horeca, a forum topic per customer, members told once

Group codes are verification_codes rows with purpose "group": no schema change for them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')


def upgrade():
    op.create_table(
        'staff_groups',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('horeca_id', sa.String(length=128), sa.ForeignKey('horecas.id'), nullable=False),
        sa.Column('chat_id', sa.BigInteger(), nullable=False),
        sa.Column('title', sa.String(length=256), nullable=True),
        sa.Column('linked_by', sa.BigInteger(), nullable=True),
        sa.Column('language_code', sa.String(length=16), nullable=True),
        sa.Column('linked_at', sa.DateTime(), nullable=False),
        sa.Column('problem', sa.String(length=32), nullable=True),
        sa.Column('problem_at', sa.DateTime(), nullable=True),
        sa.UniqueConstraint('horeca_id'),
        sa.UniqueConstraint('chat_id'),
    )
    op.create_table(
        'group_topics',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('group_id', BigId, sa.ForeignKey('staff_groups.id'), nullable=False),
        sa.Column('customer_id', BigId, sa.ForeignKey('customers.id'), nullable=False),
        sa.Column('message_thread_id', sa.BigInteger(), nullable=True),
        sa.Column('name', sa.String(length=128), nullable=True),
        sa.Column('header_message_id', sa.BigInteger(), nullable=True),
        sa.Column('header_text', sa.Text(), nullable=True),
        sa.Column('header_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('group_id', 'customer_id', name='uq_group_topics_group_customer'),
    )
    op.create_index('ix_group_topics_thread', 'group_topics', ['group_id', 'message_thread_id'], unique=False)
    op.create_table(
        'group_strangers',
        sa.Column('id', BigId, primary_key=True),
        sa.Column('group_id', BigId, sa.ForeignKey('staff_groups.id'), nullable=False),
        sa.Column('telegram_user_id', sa.BigInteger(), nullable=False),
        sa.Column('told_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('group_id', 'telegram_user_id', name='uq_group_strangers_group_user'),
    )


def downgrade():
    op.drop_table('group_strangers')
    op.drop_index('ix_group_topics_thread', table_name='group_topics')
    op.drop_table('group_topics')
    op.drop_table('staff_groups')
