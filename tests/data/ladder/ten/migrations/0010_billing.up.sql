CREATE SCHEMA billing;
CREATE TABLE billing.invoices (
  id bigserial PRIMARY KEY,
  order_id bigint NOT NULL REFERENCES orders (id),
  issued_at timestamptz NOT NULL DEFAULT now()
);
