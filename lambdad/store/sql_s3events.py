"""The metadata store's S3 notification endpoints: a part of ``SqlStore`` (store/sql.py).

One row per (function, qualifier) in ``s3_notifications``, looked up by its id on every webhook request (the id is
unique and indexed). Nothing is cached: every node of a cluster reads the same rows.
"""

from __future__ import annotations

import sqlalchemy as sa

from lambdad.store import schema as t
from lambdad.store.interfaces import StoredS3Notification
from lambdad.store.sql_base import SqlBase


def _select() -> sa.Select[tuple[str, str, str, str, str, str, str]]:
    n = t.s3_notifications
    return sa.select(n.c.notification_id, n.c.name, n.c.qualifier, n.c.config, n.c.token_hash, n.c.created,
                     n.c.last_modified)


class S3NotificationTables(SqlBase):
    async def put_s3_notification(self, notification: StoredS3Notification) -> None:
        await self._transaction([self._upsert(
            t.s3_notifications, ("name", "qualifier"), name=notification.name, qualifier=notification.qualifier,
            notification_id=notification.notification_id, config=notification.config,
            token_hash=notification.token_hash, created=notification.created,
            last_modified=notification.last_modified)])

    async def get_s3_notification(self, name: str, qualifier: str) -> StoredS3Notification | None:
        n = t.s3_notifications
        rows = await self._read(_select().where(n.c.name == name, n.c.qualifier == qualifier))
        return StoredS3Notification(*rows[0]) if rows else None

    async def get_s3_notification_by_id(self, notification_id: str) -> StoredS3Notification | None:
        rows = await self._read(_select().where(t.s3_notifications.c.notification_id == notification_id))
        return StoredS3Notification(*rows[0]) if rows else None

    async def list_s3_notifications(self, name: str | None = None) -> list[StoredS3Notification]:
        n = t.s3_notifications
        query = _select().order_by(n.c.name, n.c.qualifier)
        if name is not None:
            query = query.where(n.c.name == name)
        return [StoredS3Notification(*row) for row in await self._read(query)]

    async def delete_s3_notification(self, name: str, qualifier: str) -> bool:
        n = t.s3_notifications
        statement = sa.delete(n).where(n.c.name == name, n.c.qualifier == qualifier)
        return bool(await self._run(lambda conn: conn.execute(statement).rowcount, write=True))
