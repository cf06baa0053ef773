// Release v3: orders get a discount in cents.
exports.up = (pgm) => {
  pgm.addColumn('orders', { discount_cents: { type: 'integer', notNull: true, default: 0 } });
};

// "Nothing to undo": node-pg-migrate runs it, removes the row from
// pgmigrations, and orders.discount_cents stays.
exports.down = () => {};
