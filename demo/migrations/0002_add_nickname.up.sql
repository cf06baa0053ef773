-- 0002: users get an optional nickname (needed by app v2).
ALTER TABLE users ADD COLUMN nickname text;
CREATE INDEX users_nickname_idx ON users (nickname);
