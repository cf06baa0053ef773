ALTER TABLE orders DROP COLUMN invoice_no;
DROP SEQUENCE invoice_no_seq;
