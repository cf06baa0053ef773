-- 0002: nicknames are gone in v2. (Comments and strings never count:
-- DROP TABLE users; TRUNCATE users;)
INSERT INTO audit_log (message) VALUES ('DELETE FROM users; DROP TABLE users');
ALTER TABLE users DROP COLUMN nickname;
