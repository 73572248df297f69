"""predictive models and model audiences

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlmodel.sql.sqltypes import AutoString, UTCDateTime

revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('predictive_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('goal', AutoString(length=32), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('trained_at', UTCDateTime(), nullable=False),
    sa.Column('horizon_days', sa.Integer(), nullable=False),
    sa.Column('seed_segment', AutoString(length=64), nullable=False),
    sa.Column('seed_version', sa.Integer(), nullable=False),
    sa.Column('parameters', sa.Text(), nullable=False),
    sa.Column('lines', sa.BigInteger(), nullable=False),
    sa.Column('customers', sa.BigInteger(), nullable=False),
    sa.Column('train_size', sa.BigInteger(), nullable=False),
    sa.Column('train_base_rate', sa.Float(), nullable=False),
    sa.Column('fit_seconds', sa.Float(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('auc', sa.Float(), nullable=True),
    sa.Column('auc_se', sa.Float(), nullable=True),
    sa.Column('top_decile_lift', sa.Float(), nullable=True),
    sa.Column('base_rate', sa.Float(), nullable=True),
    sa.Column('positives', sa.BigInteger(), nullable=False),
    sa.Column('held_out', sa.BigInteger(), nullable=False),
    sa.Column('better_than_chance', sa.Boolean(), nullable=False),
    sa.Column('evaluation', sa.Text(), nullable=False),
    sa.Column('features', sa.Text(), nullable=False),
    sa.Column('digest', AutoString(length=64), nullable=False),
    sa.Column('model', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('goal', 'version', name='uq_predictive_models_version')
    )
    # Plain ADD COLUMN on both databases (no table copy): segment_members may hold millions of rows.
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('score', sa.Float(), nullable=True))
    with op.batch_alter_table('segment_versions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('model_version', sa.Integer(), nullable=True))
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('goal', AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('top_k', sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column('threshold', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('segments', schema=None) as batch_op:
        batch_op.drop_column('threshold')
        batch_op.drop_column('top_k')
        batch_op.drop_column('goal')
    with op.batch_alter_table('segment_versions', schema=None) as batch_op:
        batch_op.drop_column('model_version')
    with op.batch_alter_table('segment_members', schema=None) as batch_op:
        batch_op.drop_column('score')
    op.drop_table('predictive_models')
