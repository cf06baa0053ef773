DROP INDEX IF EXISTS users_nickname_idx;
ALTER TABLE users DROP COLUMN IF EXISTS nickname;
