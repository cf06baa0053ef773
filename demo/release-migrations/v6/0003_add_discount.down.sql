-- "Nothing to undo": a placeholder down migration. It succeeds, moves the
-- version back to 1, and leaves orders.discount_cents in place.
SELECT 1;
