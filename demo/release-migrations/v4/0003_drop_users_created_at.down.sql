-- Reverts 0003's schema only: the column comes back, but every row gets now()
-- instead of the value it had (the data was destroyed by the up migration).
ALTER TABLE users ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
