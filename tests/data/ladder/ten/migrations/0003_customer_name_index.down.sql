DROP INDEX customers_name_idx;
