"""media in dialogs: dialog_messages.media/source_message_id/edited_at, media_uploads (file_id per bot), message_copies

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 05:30:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('media', sa.Text(), nullable=True))
        batch_op.add_column(sa.Column('source_message_id', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('edited_at', sa.DateTime(), nullable=True))
        batch_op.create_index('ix_dialog_messages_source', ['source_message_id'], unique=False)
    op.create_table(
        'media_uploads',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('file_unique_id', sa.String(length=128), nullable=False),
        sa.Column('bot', sa.String(length=16), nullable=False),
        sa.Column('file_id', sa.String(length=256), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('file_unique_id', 'bot', name='uq_media_uploads_file_bot'),
    )
    op.create_table(
        'message_copies',
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('dialog_message_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('outbox_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.ForeignKeyConstraint(['dialog_message_id'], ['dialog_messages.id']),
        sa.ForeignKeyConstraint(['outbox_id'], ['outbox.id']),
        sa.PrimaryKeyConstraint('id'),
    )
    with op.batch_alter_table('message_copies', schema=None) as batch_op:
        batch_op.create_index('ix_message_copies_dialog_message', ['dialog_message_id'], unique=False)


def downgrade():
    with op.batch_alter_table('message_copies', schema=None) as batch_op:
        batch_op.drop_index('ix_message_copies_dialog_message')
    op.drop_table('message_copies')
    op.drop_table('media_uploads')
    with op.batch_alter_table('dialog_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_dialog_messages_source')
        batch_op.drop_column('edited_at')
        batch_op.drop_column('source_message_id')
        batch_op.drop_column('media')
