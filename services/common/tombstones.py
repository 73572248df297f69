"""Salted hashes of erased customer ids: a service can recognise an erased id without keeping it."""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

SALT_KEY = "tombstone_salt"


class TombstoneHasher:
    """Hashes ids with a per-database random salt kept in the service's key/value meta table."""

    def __init__(self, meta: Table) -> None:
        self.meta = meta
        self._salt: bytes | None = None

    def _salt_of(self, conn: Connection) -> bytes:
        if self._salt is None:
            read = select(self.meta.c.value).where(self.meta.c.key == SALT_KEY)
            value = conn.execute(read).scalar()
            if value is None:
                insert = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(self.meta)
                conn.execute(insert.on_conflict_do_nothing(), [{"key": SALT_KEY, "value": secrets.token_hex(32)}])
                value = conn.execute(read).scalar_one()  # a concurrent first start may have won
            self._salt = bytes.fromhex(str(value))
        return self._salt

    def hash(self, conn: Connection, customer_id: str) -> str:
        return hashlib.sha256(self._salt_of(conn) + customer_id.encode()).hexdigest()
