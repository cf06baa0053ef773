-- Reverts 0003: drops the status column and its index.
DROP INDEX IF EXISTS orders_status_idx;
ALTER TABLE orders DROP COLUMN IF EXISTS status;
