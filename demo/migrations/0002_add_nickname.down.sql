-- Reverts 0002: drops the nickname column (nicknames written since are lost).
DROP INDEX IF EXISTS users_nickname_idx;
ALTER TABLE users DROP COLUMN IF EXISTS nickname;
