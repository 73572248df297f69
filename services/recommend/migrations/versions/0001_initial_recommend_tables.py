"""initial recommend tables

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import UTCDateTime

revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('customer_features',
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('rfm_segment', sa.String(length=32), nullable=False),
    sa.Column('region', sa.String(length=128), nullable=False),
    sa.Column('price_band', sa.String(length=8), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('customer_id')
    )
    op.create_table('items',
    sa.Column('sku', sa.String(length=128), nullable=False),
    sa.Column('category', sa.String(length=128), nullable=False),
    sa.Column('brand', sa.String(length=128), nullable=False),
    sa.Column('price_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('price_band', sa.String(length=8), nullable=False),
    sa.Column('in_stock', sa.Boolean(), nullable=False),
    sa.Column('tags', sa.Text(), nullable=False),
    sa.Column('source', sa.String(length=16), nullable=False),
    sa.Column('updated_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sku')
    )
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_items_source'), ['source'], unique=False)

    op.create_table('model_versions',
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('forced', sa.Boolean(), nullable=False),
    sa.Column('params', sa.Text(), nullable=False),
    sa.Column('cutoff', UTCDateTime(), nullable=True),
    sa.Column('train_until_cutoff', sa.Boolean(), nullable=False),
    sa.Column('interactions', sa.BigInteger(), nullable=False),
    sa.Column('customers', sa.BigInteger(), nullable=False),
    sa.Column('items', sa.BigInteger(), nullable=False),
    sa.Column('started_at', UTCDateTime(), nullable=False),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('metrics', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('version')
    )
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_model_versions_state'), ['state'], unique=False)

    op.create_table('service_meta',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('tombstones',
    sa.Column('id_hash', sa.String(length=64), nullable=False),
    sa.Column('erased_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id_hash')
    )


def downgrade() -> None:
    op.drop_table('tombstones')
    op.drop_table('service_meta')
    with op.batch_alter_table('model_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_model_versions_state'))

    op.drop_table('model_versions')
    with op.batch_alter_table('items', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_items_source'))

    op.drop_table('items')
    op.drop_table('customer_features')
