-- 0001: users, with an optional nickname.
CREATE TABLE users (
    id       bigserial PRIMARY KEY,
    email    text      NOT NULL UNIQUE,
    nickname text
);
