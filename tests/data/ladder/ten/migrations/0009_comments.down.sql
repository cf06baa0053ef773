COMMENT ON COLUMN orders.amount_cents IS NULL;
COMMENT ON TABLE customers IS NULL;
