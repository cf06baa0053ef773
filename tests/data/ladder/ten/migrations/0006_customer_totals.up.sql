CREATE VIEW customer_totals AS
  SELECT customer_id, sum(amount_cents) AS total_cents FROM orders GROUP BY customer_id;
