"""initial campaign tables

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
    op.create_table('campaigns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=128), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('spec', sa.Text(), nullable=False),
    sa.Column('currency', sa.String(length=3), nullable=False),
    sa.Column('budget_minor', sa.BigInteger(), nullable=False),
    sa.Column('spent_minor', sa.BigInteger(), nullable=False),
    sa.Column('segment', sa.String(length=64), nullable=False),
    sa.Column('audience_version', sa.Integer(), nullable=False),
    sa.Column('start_at', UTCDateTime(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('launched_at', UTCDateTime(), nullable=True),
    sa.Column('finished_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_campaigns_state'), ['state'], unique=False)

    op.create_table('partners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('endpoint', sa.Text(), nullable=False),
    sa.Column('secret', sa.Text(), nullable=False),
    sa.Column('api_key_hash', sa.String(length=64), nullable=False),
    sa.Column('rate_limit_per_s', sa.Integer(), nullable=False),
    sa.Column('batch_size', sa.Integer(), nullable=False),
    sa.Column('mode', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('api_key_hash', name='uq_partners_api_key_hash'),
    sa.UniqueConstraint('name', name='uq_partners_name')
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
    op.create_table('deliveries',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=True, nullable=False),
    sa.Column('campaign_id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.String(length=128), nullable=False),
    sa.Column('idempotency_key', sa.String(length=64), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('channel', sa.String(length=16), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', UTCDateTime(), nullable=False),
    sa.Column('lease_owner', sa.String(length=64), nullable=False),
    sa.Column('lease_until', UTCDateTime(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('cost_minor', sa.BigInteger(), nullable=False),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.Column('delivered_at', UTCDateTime(), nullable=True),
    sa.Column('opened_at', UTCDateTime(), nullable=True),
    sa.Column('clicked_at', UTCDateTime(), nullable=True),
    sa.Column('unsubscribed_at', UTCDateTime(), nullable=True),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'], ),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('campaign_id', 'customer_id', name='uq_deliveries_campaign_customer'),
    sa.UniqueConstraint('idempotency_key', name='uq_deliveries_idempotency_key')
    )
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.create_index('ix_deliveries_campaign_state', ['campaign_id', 'state'], unique=False)
        batch_op.create_index('ix_deliveries_customer_sent', ['customer_id', 'sent_at'], unique=False)
        batch_op.create_index('ix_deliveries_due', ['state', 'next_attempt_at'], unique=False)
        batch_op.create_index('ix_deliveries_partner_state', ['partner_id', 'state'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_index('ix_deliveries_partner_state')
        batch_op.drop_index('ix_deliveries_due')
        batch_op.drop_index('ix_deliveries_customer_sent')
        batch_op.drop_index('ix_deliveries_campaign_state')

    op.drop_table('deliveries')
    op.drop_table('tombstones')
    op.drop_table('service_meta')
    op.drop_table('partners')
    with op.batch_alter_table('campaigns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_campaigns_state'))

    op.drop_table('campaigns')
