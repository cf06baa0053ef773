-- 0001: initial schema of the demo app (users and their orders).
CREATE TABLE users (
    id         bigserial   PRIMARY KEY,
    email      text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE orders (
    id          bigserial   PRIMARY KEY,
    user_id     bigint      NOT NULL REFERENCES users (id),
    amount_cents integer    NOT NULL CHECK (amount_cents >= 0),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_created_idx ON orders (created_at);
