ALTER TABLE orders DROP CONSTRAINT orders_amount_not_negative;
