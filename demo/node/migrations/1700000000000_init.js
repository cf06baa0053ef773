// The initial schema of the demo service: users and their orders.
exports.up = (pgm) => {
  pgm.createTable('users', {
    id: { type: 'bigserial', primaryKey: true },
    email: { type: 'text', notNull: true, unique: true },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createTable('orders', {
    id: { type: 'bigserial', primaryKey: true },
    user_id: { type: 'bigint', notNull: true, references: 'users' },
    amount_cents: { type: 'integer', notNull: true, check: 'amount_cents >= 0' },
    created_at: { type: 'timestamptz', notNull: true, default: pgm.func('now()') },
  });
  pgm.createIndex('orders', 'created_at', { name: 'orders_created_idx' });
};

exports.down = (pgm) => {
  pgm.dropTable('orders');
  pgm.dropTable('users');
};
