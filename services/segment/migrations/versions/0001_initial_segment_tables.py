"""initial segment tables

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
    op.create_table('portraits',
    sa.Column('key', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('computed_at', UTCDateTime(), nullable=True),
    sa.Column('synced_at', UTCDateTime(), nullable=False),
    sa.Column('has_orders', sa.Boolean(), nullable=False),
    sa.Column('recency_days', sa.Integer(), nullable=False),
    sa.Column('frequency', sa.Integer(), nullable=False),
    sa.Column('monetary_minor', sa.BigInteger(), nullable=False),
    sa.Column('average_order_value_minor', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('r_score', sa.Integer(), nullable=False),
    sa.Column('f_score', sa.Integer(), nullable=False),
    sa.Column('m_score', sa.Integer(), nullable=False),
    sa.Column('rfm_segment', sa.String(length=32), nullable=False),
    sa.Column('lifecycle', sa.String(length=16), nullable=False),
    sa.Column('purchasing_power', sa.Float(), nullable=False),
    sa.Column('price_sensitivity', sa.Float(), nullable=False),
    sa.Column('brand_loyalty', sa.Float(), nullable=False),
    sa.Column('category_loyalty', sa.Float(), nullable=False),
    sa.Column('top_category_1', sa.String(length=128), nullable=False),
    sa.Column('top_category_2', sa.String(length=128), nullable=False),
    sa.Column('top_category_3', sa.String(length=128), nullable=False),
    sa.Column('top_category_4', sa.String(length=128), nullable=False),
    sa.Column('top_category_5', sa.String(length=128), nullable=False),
    sa.Column('preferred_payment', sa.String(length=24), nullable=False),
    sa.Column('preferred_sales_channel', sa.String(length=16), nullable=False),
    sa.Column('region', sa.String(length=128), nullable=False),
    sa.Column('views', sa.Integer(), nullable=False),
    sa.Column('carts', sa.Integer(), nullable=False),
    sa.Column('searches', sa.Integer(), nullable=False),
    sa.Column('refunds', sa.Integer(), nullable=False),
    sa.Column('purchase_interval_days', sa.Float(), nullable=False),
    sa.Column('consent_email', sa.Boolean(), nullable=False),
    sa.Column('consent_sms', sa.Boolean(), nullable=False),
    sa.Column('consent_push', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('key'),
    sa.UniqueConstraint('customer_id', name='uq_portraits_customer_id')
    )
    op.create_table('segment_members',
    sa.Column('version_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('customer_key', sa.Integer(), autoincrement=False, nullable=False),
    sa.PrimaryKeyConstraint('version_id', 'customer_key'),
    sqlite_with_rowid=False
    )
    op.create_table('segments',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('built_in', sa.Boolean(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', name='uq_segments_name')
    )
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
    op.create_table('segment_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('segment_id', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('portraits', sa.BigInteger(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('rule', sa.Text(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['segment_id'], ['segments.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('segment_id', 'number', name='uq_segment_versions_number')
    )
    with op.batch_alter_table('segment_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_segment_versions_segment_id'), ['segment_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('segment_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_segment_versions_segment_id'))

    op.drop_table('segment_versions')
    op.drop_table('tombstones')
    op.drop_table('service_meta')
    op.drop_table('segments')
    op.drop_table('segment_members')
    op.drop_table('portraits')
