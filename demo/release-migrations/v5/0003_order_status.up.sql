-- 0003 (release v5): orders get a status, with an index built without
-- locking the table. CREATE INDEX CONCURRENTLY cannot run inside a
-- transaction block, and migrate runs each file in one: the file fails
-- half-way, its ALTER TABLE is rolled back and version 3 stays dirty.
ALTER TABLE orders ADD COLUMN status text NOT NULL DEFAULT 'paid';
CREATE INDEX CONCURRENTLY orders_status_idx ON orders (status);
