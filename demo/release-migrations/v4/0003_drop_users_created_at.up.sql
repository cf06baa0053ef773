-- 0003 (release v4): users.created_at is "not used any more" and is dropped.
-- Destructive: the column's values are gone once this commits.
ALTER TABLE users DROP COLUMN created_at;
