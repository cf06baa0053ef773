ALTER TABLE orders ADD CONSTRAINT orders_amount_not_negative CHECK (amount_cents >= 0);
