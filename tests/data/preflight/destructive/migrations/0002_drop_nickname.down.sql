-- Nothing to undo: the column is gone.
SELECT 1;
