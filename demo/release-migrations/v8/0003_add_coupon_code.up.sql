-- 0003 (release v8): orders may carry a coupon code.
ALTER TABLE orders ADD COLUMN coupon_code text;
