-- Reverts 0001: drops every table of the demo app (and its data).
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS users;
