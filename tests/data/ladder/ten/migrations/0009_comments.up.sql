COMMENT ON TABLE customers IS 'people who order';
COMMENT ON COLUMN orders.amount_cents IS 'in cents, never negative';
