// Release v2: users get an optional nickname (needed by v2's code).
exports.up = (pgm) => {
  pgm.addColumn('users', { nickname: { type: 'text' } });
  pgm.createIndex('users', 'nickname', { name: 'users_nickname_idx' });
};

// Reverts it: nicknames written since are lost.
exports.down = (pgm) => {
  pgm.dropIndex('users', 'nickname', { name: 'users_nickname_idx' });
  pgm.dropColumn('users', 'nickname');
};
