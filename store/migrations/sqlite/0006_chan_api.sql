-- The MD5 of a media original, base64 of the 16 raw bytes, as the
-- 4chan-compatible API publishes it (`md5`). Computed when a file is stored;
-- files stored before this column existed are filled in at node start
-- (NULL until then).
ALTER TABLE media ADD COLUMN md5 TEXT;

-- A moderator deleted the post's file but kept the post (4chan's
-- `filedeleted`).
ALTER TABLE post ADD COLUMN file_deleted INTEGER NOT NULL DEFAULT 0 CHECK (file_deleted IN (0, 1));

-- The name the file was uploaded under, without its extension (4chan's
-- `filename`); NULL for files stored before names were kept.
ALTER TABLE media ADD COLUMN file_name TEXT;
