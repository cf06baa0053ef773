-- 0003 (release v6): orders get a discount in cents.
ALTER TABLE orders ADD COLUMN discount_cents integer NOT NULL DEFAULT 0;
