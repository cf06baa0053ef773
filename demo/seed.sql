-- Seed data for a fresh database at schema version 1 (run once, after
-- `migrate up`). Fixed timestamps so the data can be compared exactly
-- before and after a rollback.
INSERT INTO users (email, created_at) VALUES
    ('alice@example.com', '2024-01-01 10:00:00+00'),
    ('bob@example.com',   '2024-01-02 11:00:00+00'),
    ('carol@example.com', '2024-01-03 12:00:00+00');

INSERT INTO orders (user_id, amount_cents, created_at)
SELECT u.id, o.amount_cents, o.created_at::timestamptz
FROM (VALUES
    ('alice@example.com', 1250, '2024-02-01 09:00:00+00'),
    ('alice@example.com',  499, '2024-02-03 09:30:00+00'),
    ('bob@example.com',   9900, '2024-02-04 14:15:00+00'),
    ('carol@example.com',  150, '2024-02-05 16:45:00+00'),
    ('carol@example.com', 2000, '2024-02-06 08:05:00+00')
) AS o (email, amount_cents, created_at)
JOIN users u ON u.email = o.email;
