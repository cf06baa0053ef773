DROP TABLE billing.invoices;
DROP SCHEMA billing;
