"""outbox: horeca_id column (removing a staff member finds their pending notices without matching JSON)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 10:00:00.000000

"""
import json

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

outbox = sa.table(
    'outbox',
    sa.column('id', sa.BigInteger()),
    sa.column('payload', sa.Text()),
    sa.column('state', sa.String(16)),
    sa.column('horeca_id', sa.String(128)),
)


def upgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.add_column(sa.Column('horeca_id', sa.String(length=128), nullable=True))
        batch_op.create_index('ix_outbox_horeca', ['horeca_id', 'state'], unique=False)

    # Backfill the rows still waiting for delivery (the only ones a removal looks for): their JSON payload names
    # the horeca of the dialog they carry. Read in Python so SQLite and PostgreSQL do the same.
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(outbox.c.id, outbox.c.payload).where(
            outbox.c.state.in_(('pending', 'sending')), outbox.c.payload.is_not(None)
        )
    ).all()
    for row_id, payload in rows:
        try:
            data = json.loads(payload)
        except ValueError:
            continue
        horeca_id = data.get('horeca_id') if isinstance(data, dict) else None
        if isinstance(horeca_id, str) and 0 < len(horeca_id) <= 128:
            bind.execute(sa.update(outbox).where(outbox.c.id == row_id).values(horeca_id=horeca_id))


def downgrade():
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('ix_outbox_horeca')
        batch_op.drop_column('horeca_id')
