CREATE SEQUENCE invoice_no_seq START 1000;
ALTER TABLE orders ADD COLUMN invoice_no bigint DEFAULT nextval('invoice_no_seq');
