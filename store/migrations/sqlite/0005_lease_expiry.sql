-- A shard lease's expiry, apart from its holder and epoch.
--
-- A fenced write share-locks its shard's (holder, epoch) row until it
-- commits, so a takeover (which moves the epoch) waits for the writes of the
-- old holder. Renewing a lease, every third of its time, only moves the
-- expiry: kept in the same row, it waited for those writes too, and with
-- several writers it could deadlock with them (the renewal locks rows one
-- by one while a batch share-locks others). Here a renewal touches this
-- table only.
CREATE TABLE shard_lease_expiry (
    shard      INTEGER PRIMARY KEY,
    expires_at INTEGER NOT NULL
);

INSERT INTO shard_lease_expiry (shard, expires_at)
SELECT shard, expires_at FROM shard_lease;

ALTER TABLE shard_lease DROP COLUMN expires_at;
