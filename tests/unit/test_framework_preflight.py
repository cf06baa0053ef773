"""Preflight of framework migrations (harness/preflight/frameworks.py and framework_checks.py): the
`framework-down` and `framework-destructive` checks on migration files written the way each
framework's documentation and generators write them, and on the demo's own migrations.

Pure files only: nothing here starts a cluster, a container or a database.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from click.testing import CliRunner

from harness import preflight as pf
from harness.cli import cli
from harness.journal import Finding
from harness.preflight.frameworks import load_framework_migrations
from harness.scenario import load_scenario

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "scenarios"
FRAMEWORK_CHECKS = [pf.FRAMEWORK_DOWN, pf.FRAMEWORK_DESTRUCTIVE]
BACKUP_RUNBOOK = ('# runbook\n\n## Deploy\n\n```sh\npg_dump -Fc "$DATABASE_URL" > before.dump\n```\n\n'
                  '## Rollback\n\n```sh\nkubectl -n "$NAMESPACE" rollout undo deployment/demo\n```\n')


def dedent(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


@pytest.fixture
def scenario(tmp_path: Path, kit: SimpleNamespace):
    """scenario({file: text}, runbook=None) → a loaded Scenario whose migrations.files holds those files."""
    counter = iter(range(1000))

    def _make(files: dict[str, str], runbook: str | None = None) -> Any:
        name = f"s{next(counter)}"
        doc = kit.minimal_doc(migrations={"up": "migrate up", "down": "migrate down", "files": "migrations"})
        d = kit.write_scenario(tmp_path, name, doc, **({"runbook": runbook} if runbook else {}))
        for rel, text in files.items():
            (d / "migrations" / rel).parent.mkdir(parents=True, exist_ok=True)
            (d / "migrations" / rel).write_text(dedent(text))
        return load_scenario(d)

    return _make


def run(scenario_: Any) -> list[Finding]:
    return pf.run_checks(scenario_, only=FRAMEWORK_CHECKS)


def summary(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.check, f.severity) for f in findings]


# ══ the files, as the frameworks write them ═══════════════════════════════
ALEMBIC_HEAD = '''\
    """{message}

    Revision ID: 8e4b7c1d2a65
    Revises: 3f1c2a9d7b10
    Create Date: 2024-03-01 09:00:00.000000

    """
    from typing import Sequence, Union

    from alembic import op
    import sqlalchemy as sa


    # revision identifiers, used by Alembic.
    revision: str = '8e4b7c1d2a65'
    down_revision: Union[str, None] = '3f1c2a9d7b10'
    branch_labels: Union[str, Sequence[str], None] = None
    depends_on: Union[str, Sequence[str], None] = None


'''

ALEMBIC_BODY = dedent(ALEMBIC_HEAD).count("\n") + 2  # the line of upgrade()'s first statement


def alembic(upgrade: str, downgrade: str | None, message: str = "add last_transaction_date") -> str:
    text = dedent(ALEMBIC_HEAD.replace("{message}", message)) + dedent(upgrade)
    return text + ("\n\n" + dedent(downgrade) if downgrade is not None else "")


ALEMBIC_ADD = """\
    def upgrade() -> None:
        op.add_column('account', sa.Column('last_transaction_date', sa.DateTime))
    """
ALEMBIC_DROP = """\
    def downgrade() -> None:
        op.drop_column('account', 'last_transaction_date')
    """
# what `alembic revision` writes when autogenerate finds nothing (alembic's script.py.mako)
ALEMBIC_TEMPLATE_DOWN = '''\
    def downgrade() -> None:
        """Downgrade schema."""
        pass
    '''

KNEX_TEMPLATE_DOWN = """\
    /**
     * @param { import("knex").Knex } knex
     * @returns { Promise<void> }
     */
    exports.down = function(knex) {

    };
    """
KNEX_UP = """\
    /**
     * @param { import("knex").Knex } knex
     * @returns { Promise<void> }
     */
    exports.up = function(knex) {
      return knex.schema
        .createTable('users', function (table) {
           table.increments('id');
           table.string('first_name', 255).notNullable();
           table.string('last_name', 255).notNullable();
        })
        .createTable('products', function (table) {
           table.increments('id');
           table.decimal('price').notNullable();
           table.string('name', 1000).notNullable();
        });
    };
    """
KNEX_DOWN = """\
    exports.down = function(knex) {
      return knex.schema
          .dropTable("products")
          .dropTable("users");
    };
    """

PGM_HEAD = """\
    /**
     * @type {import('node-pg-migrate').ColumnDefinitions | undefined}
     */
    exports.shorthands = undefined;

    """
PGM_UP = """\
    /**
     * @param pgm {import('node-pg-migrate').MigrationBuilder}
     * @param run {() => void | undefined}
     * @returns {Promise<void> | void}
     */
    exports.up = (pgm) => {
      pgm.addColumns('users', {
        lastLogin: { type: 'timestamp' },
      });
    };
    """
# what `node-pg-migrate create` writes for the down
PGM_TEMPLATE_DOWN = """\
    /**
     * @param pgm {import('node-pg-migrate').MigrationBuilder}
     * @param run {() => void | undefined}
     * @returns {Promise<void> | void}
     */
    exports.down = (pgm) => {};
    """

SEQUELIZE_SKELETON = """\
    'use strict';

    /** @type {import('sequelize-cli').Migration} */
    module.exports = {
      async up (queryInterface, Sequelize) {
        await queryInterface.addColumn('Person', 'petName', { type: Sequelize.DataTypes.STRING });
      },

      async down (queryInterface, Sequelize) {
        /**
         * Add reverting commands here.
         *
         * Example:
         * await queryInterface.dropTable('users');
         */
      }
    };
    """
SEQUELIZE_TRANSACTION = """\
    module.exports = {
      async up(queryInterface, Sequelize) {
        const transaction = await queryInterface.sequelize.transaction();
        try {
          await queryInterface.addColumn(
            'Person',
            'petName',
            {
              type: Sequelize.DataTypes.STRING,
            },
            { transaction },
          );
          await queryInterface.addIndex('Person', 'petName', {
            fields: 'petName',
            unique: true,
            transaction,
          });
          await transaction.commit();
        } catch (err) {
          await transaction.rollback();
          throw err;
        }
      },
      async down(queryInterface, Sequelize) {
        const transaction = await queryInterface.sequelize.transaction();
        try {
          await queryInterface.removeColumn('Person', 'petName', { transaction });
          await transaction.commit();
        } catch (err) {
          await transaction.rollback();
          throw err;
        }
      },
    };
    """

TYPEORM = """\
    import { MigrationInterface, QueryRunner } from "typeorm"

    export class PostRefactoring1614519211000 implements MigrationInterface {
        name = 'PostRefactoring1614519211000'

        public async up(queryRunner: QueryRunner): Promise<void> {
            await queryRunner.query(`ALTER TABLE "post" ADD "subtitle" character varying`)
        }

        public async down(queryRunner: QueryRunner): Promise<void> {DOWN}
    }
    """
TYPEORM_REAL_DOWN = """
            await queryRunner.query(`ALTER TABLE "post" DROP COLUMN "subtitle"`) // reverts what up made
        """

# what `db-migrate create` writes
DB_MIGRATE_TEMPLATE = """\
    'use strict';

    var dbm;
    var type;
    var seed;

    /**
      * We receive the dbmigrate dependency from dbmigrate initially.
      * This enables us to not have to rely on NODE_PATH.
      */
    exports.setup = function(options, seedLink) {
      dbm = options.dbmigrate;
      type = dbm.dataType;
      seed = seedLink;
    };

    exports.up = function(db) {
      UP
    };

    exports.down = function(db) {
      return null;
    };

    exports._meta = {
      "version": 1
    };
    """
DB_MIGRATE_CALLBACK = """\
    exports.up = function (db, callback) {
      db.createTable('pets', {
        id: { type: 'int', primaryKey: true },
        name: 'string'
      }, callback);
    };

    exports.down = function (db, callback) {
      callback();
    };
    """

GOOSE = """\
    -- +goose Up
    -- +goose StatementBegin
    CREATE TABLE post (
        id int NOT NULL,
        title text,
        body text,
        PRIMARY KEY(id)
    );
    -- +goose StatementEnd

    DOWN"""
GOOSE_DOWN = """\
    -- +goose Down
    -- +goose StatementBegin
    DROP TABLE post;
    -- +goose StatementEnd
    """
# what `goose create NAME sql` writes below the Up section
GOOSE_TEMPLATE_DOWN = """\
    -- +goose Down
    -- +goose StatementBegin
    SELECT 'down SQL query';
    -- +goose StatementEnd
    """


def goose(down: str) -> str:
    return dedent(GOOSE).replace("DOWN", dedent(down))


# ══ framework-down ════════════════════════════════════════════════════════
@pytest.mark.parametrize(("files", "tool", "says"), [
    ({"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, ALEMBIC_TEMPLATE_DOWN)}, "Alembic",
     '(`"""Downgrade schema."""; pass`)'),
    ({"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, "def downgrade():\n    ...\n")}, "Alembic", "(`...`)"),
    ({"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, "def downgrade():\n    # nothing to undo\n    pass\n")},
     "Alembic", "(`pass`)"),
    ({"20240101_users.js": dedent(KNEX_UP) + "\n" + dedent(KNEX_TEMPLATE_DOWN)}, "knex", "function(knex) { }"),
    ({"1700000000001_last-login.js": dedent(PGM_HEAD) + dedent(PGM_UP) + "\n" + dedent(PGM_TEMPLATE_DOWN)},
     "node-pg-migrate", "(`(pgm) => {}`)"),
    ({"20240101-pet-name.js": SEQUELIZE_SKELETON}, "Sequelize", "async down (queryInterface, Sequelize)"),
    ({"1614519211000-PostRefactoring.ts": TYPEORM.replace("{DOWN}", "{}")}, "TypeORM",
     "public async down(queryRunner: QueryRunner): Promise<void> {}"),
    ({"20240101-pets.js": DB_MIGRATE_TEMPLATE.replace("UP", "return db.addColumn('pets', 'age', { type: 'int' });")},
     "db-migrate",
     "return null;"),
    ({"20240101-pets.js": DB_MIGRATE_CALLBACK}, "db-migrate", "callback();"),
    ({"20240101120000_post.sql": goose(GOOSE_TEMPLATE_DOWN)}, "goose", "SELECT 'down SQL query'"),
    ({"V2__add_nickname.sql": "ALTER TABLE users ADD COLUMN nickname text;\n",
      "U2__add_nickname.sql": "-- nothing\n"}, "Flyway", "(`nothing`)"),
])
def test_a_down_that_does_nothing_is_a_failure(scenario, files: dict[str, str], tool: str, says: str) -> None:
    findings = run(scenario(files))
    assert summary(findings) == [(pf.FRAMEWORK_DOWN, "failure")], findings
    assert findings[0].message.startswith(f"{tool} migration ") and "does nothing" in findings[0].message
    assert says in findings[0].message and "changes the schema (line " in findings[0].message


@pytest.mark.parametrize("files", [
    {"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, ALEMBIC_DROP)},
    {"20240101_users.js": dedent(KNEX_UP) + "\n" + dedent(KNEX_DOWN)},
    # no exports.down: node-pg-migrate reverses addColumns itself
    {"1700000000001_last-login.js": dedent(PGM_HEAD) + dedent(PGM_UP)},
    {"20240101-pet-name.js": SEQUELIZE_TRANSACTION},
    {"1614519211000-PostRefactoring.ts": TYPEORM.replace("{DOWN}", "{" + TYPEORM_REAL_DOWN + "}")},
    {"20240101-pets.js": DB_MIGRATE_CALLBACK.replace("callback();", "db.dropTable('pets', callback);")},
    {"20240101120000_post.sql": goose(GOOSE_DOWN)},
    {"V1__create_person.sql": "create table PERSON (ID int not null, NAME varchar(100) not null);\n",
     "U1__create_person.sql": "drop table PERSON;\n"},
    # an up that changes no schema needs no down
    {"8e4b7c1d2a65_data.py": alembic("def upgrade():\n    op.execute(\"UPDATE account SET name = 'x'\")\n",
                                     "def downgrade():\n    pass\n")},
    {"8e4b7c1d2a65_data.py": alembic("def upgrade():\n    conn = op.get_bind()\n"
                                     "    conn.execute(sa.text(\"DELETE FROM account WHERE name = 'x'\"))\n",
                                     "def downgrade():\n    pass\n")},
    {"20240101-seed.js": "module.exports = {\n  up: (queryInterface) => queryInterface.bulkInsert('users', "
                         "[{ email: 'a@b.c' }]),\n  down: () => Promise.resolve(),\n};\n"},
    {"20240101120000_noop.sql": goose(GOOSE_TEMPLATE_DOWN).replace(
        "CREATE TABLE post (\n    id int NOT NULL,\n    title text,\n    body text,\n    PRIMARY KEY(id)\n);",
        "SELECT 1;")},
])
def test_a_real_down_is_not_flagged(scenario, files: dict[str, str]) -> None:
    assert run(scenario(files)) == []


@pytest.mark.parametrize(("files", "says"), [
    ({"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, None)}, "has no downgrade() while its up changes the schema "
     f"(line {ALEMBIC_BODY}: `op.add_column('account',"),
    ({"20240101_users.js": KNEX_UP}, "has no exports.down while its up changes the schema (line "),
    ({"20240101120000_post.sql": goose("")}, "has no `-- +goose Down` section"),
    ({"1700000000001_sql.js": dedent(PGM_HEAD) + "exports.up = (pgm) => {\n  pgm.sql('CREATE INDEX i ON t (c)');\n};\n"},
     "`pgm.sql('CREATE INDEX i ON t (c)')` (line 7) has no reverse"),
    ({"1700000000001_drop.js": "exports.up = (pgm) => {\n  pgm.dropIndex('users', 'email');\n};\n"},
     "has no exports.down, so node-pg-migrate infers it"),
])
def test_a_missing_down_is_a_failure(scenario, files: dict[str, str], says: str) -> None:
    findings = run(scenario(files))
    assert summary(findings) == [(pf.FRAMEWORK_DOWN, "failure")], findings
    assert says in findings[0].message


def test_flyway_without_undo_says_undo_is_paid_once_per_directory(scenario) -> None:
    files = {"V1__create_person.sql": "create table PERSON (ID int not null, NAME varchar(100) not null);\n",
             "V1.9__add_email.sql": "ALTER TABLE person ADD COLUMN email text;\n",
             "V1.10__add_nickname.sql": "ALTER TABLE person ADD COLUMN nickname text;\n",
             "V2__add_people.sql": "insert into PERSON (ID, NAME) values (1, 'Axel');\n"}  # data: no down needed
    f = run(scenario(files))
    assert summary(f) == [(pf.FRAMEWORK_DOWN, "failure")]
    assert f[0].file.endswith("V1.10__add_nickname.sql") and "(so do 2 more: 1, 1.9)" in f[0].message
    assert "Flyway Teams (paid) feature" in f[0].message and "no backup/restore step" in f[0].message
    assert summary(run(scenario(files, BACKUP_RUNBOOK))) == [(pf.FRAMEWORK_DOWN, "warning")]


@pytest.mark.parametrize(("files", "written", "says"), [
    ({"1700000000001_add.js": dedent(PGM_HEAD) + dedent(PGM_UP) + "\nexports.down = false;\n"},
     "exports.down = false", "User has disabled down migration on file"),
    ({"1700000000001_add.sql": "-- Up Migration\nALTER TABLE users ADD COLUMN nickname text;\n"},
     "no `-- Down Migration` section", "User has disabled down migration on file"),
    ({"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, 'def downgrade():\n    raise NotImplementedError("one way")\n')},
     'raise NotImplementedError("one way")', "`alembic downgrade` stops on that raise"),
    ({"20240101_users.js": dedent(KNEX_UP) + "\nexports.down = async () => {\n  throw new Error('irreversible');\n};\n"},
     "throw new Error('irreversible');", "migrating it down throws"),
])
def test_a_down_declared_irreversible_is_reported_as_such(scenario, files: dict[str, str], written: str,
                                                          says: str) -> None:
    f = run(scenario(files))
    assert summary(f) == [(pf.FRAMEWORK_DOWN, "failure")], f
    assert f"declares its down irreversible (`{written}`" in f[0].message and says in f[0].message
    # with a backup/restore step in the runbook the restore is the rollback: rehearse it
    assert summary(run(scenario(files, BACKUP_RUNBOOK))) == [(pf.FRAMEWORK_DOWN, "warning")]


# ══ framework-destructive ═════════════════════════════════════════════════
@pytest.mark.parametrize(("files", "expected"), [
    ({"1_drop.py": alembic("def upgrade():\n    op.drop_column('account', 'description')\n",
                           "def downgrade():\n    op.add_column('account', sa.Column('description', sa.Text))\n")},
     [("DROP COLUMN", "account.description", ALEMBIC_BODY)]),
    ({"1_drop.py": alembic("def upgrade():\n    op.drop_table('account')\n", "def downgrade():\n    pass\n")},
     [("DROP TABLE", "account", ALEMBIC_BODY)]),
    ({"1_alter.py": alembic(
        "def upgrade():\n    op.alter_column('account', 'name', existing_type=sa.String(50),\n"
        "                    type_=sa.String(20), existing_nullable=False)\n",
        "def downgrade():\n    op.alter_column('account', 'name', type_=sa.String(50))\n")},
     [("ALTER COLUMN TYPE", "account.name to sa.String(20)", ALEMBIC_BODY)]),
    ({"1_batch.py": alembic(
        'def upgrade():\n    with op.batch_alter_table("account") as batch_op:\n'
        '        batch_op.drop_column("description")\n        batch_op.alter_column("name", nullable=False)\n',
        "def downgrade():\n    pass\n")},
     [("DROP COLUMN", "account.description", ALEMBIC_BODY + 1), ("SET NOT NULL", "account.name", ALEMBIC_BODY + 2)]),
    ({"1_sql.py": alembic(
        'def upgrade():\n    op.execute(\n        sa.text("""\n            UPDATE account SET name = \'x\';\n'
        '            ALTER TABLE account DROP COLUMN legacy;\n        """)\n    )\n', "def downgrade():\n    pass\n")},
     [("DROP COLUMN", "account.legacy", ALEMBIC_BODY + 3)]),
    ({"1_notnull.py": alembic(
        "def upgrade():\n    op.add_column('account', sa.Column('age', sa.Integer, nullable=False))\n"
        "    op.add_column('account', sa.Column('tier', sa.Integer, nullable=False, server_default='0'))\n",
        "def downgrade():\n    op.drop_column('account', 'tier')\n    op.drop_column('account', 'age')\n")},
     [("ADD COLUMN NOT NULL without DEFAULT", "account.age", ALEMBIC_BODY)]),
    ({"20240101_alter.js": """\
        exports.up = function(knex) {
          return knex.schema.alterTable('users', function(table) {
            table.dropColumn('first_name');
            table.renameColumn('last_name', 'surname');
          });
        };
        exports.down = function(knex) {
          return knex.schema.alterTable('users', (table) => {
            table.renameColumn('surname', 'last_name');
            table.string('first_name');
          });
        };
        """}, [("DROP COLUMN", "users.first_name", 3), ("RENAME COLUMN", "users.last_name to surname", 4)]),
    ({"20240101_drop.mjs": """\
        export async function up(knex) {
          await knex.schema.dropTableIfExists('sessions');
          await knex.raw(`ALTER TABLE users DROP COLUMN legacy_token`);
        }
        export async function down(knex) {
          await knex.schema.createTable('sessions', (t) => { t.increments(); });
        }
        """}, [("DROP TABLE", "sessions", 2), ("DROP COLUMN", "users.legacy_token", 3)]),
    ({"1700000000001_cleanup.js": dedent(PGM_HEAD) + """\
        exports.up = (pgm) => {
          pgm.dropColumns('users', ['nickname', 'bio']);
          pgm.alterColumn('users', 'email', { type: 'varchar(100)', notNull: true });
          pgm.addColumns('orders', { status: { type: 'text', notNull: true } });
          pgm.sql(`
            TRUNCATE audit_log;
          `);
        };
        exports.down = false;
        """}, [("DROP COLUMN", "users.nickname", 7), ("DROP COLUMN", "users.bio", 7),
               ("ALTER COLUMN TYPE", "users.email to 'varchar(100)'", 8), ("SET NOT NULL", "users.email", 8),
               ("ADD COLUMN NOT NULL without DEFAULT", "orders.status", 9), ("TRUNCATE", "audit_log", 11)]),
    ({"20240101-drop.js": """\
        module.exports = {
          up: async (queryInterface, Sequelize) => {
            await Promise.all([
              queryInterface.removeColumn('Person', 'petName'),
              queryInterface.changeColumn('Person', 'name', { type: Sequelize.STRING(20), allowNull: false }),
            ]);
            await queryInterface.sequelize.query('DROP TABLE "Legacy"');
          },
          down: async (queryInterface, Sequelize) => {
            await queryInterface.addColumn('Person', 'petName', Sequelize.STRING);
          },
        };
        """}, [("DROP COLUMN", "Person.petName", 4), ("ALTER COLUMN TYPE", "Person.name to Sequelize.STRING(20)", 5),
               ("SET NOT NULL", "Person.name", 5), ("DROP TABLE", '"Legacy"', 7)]),
    ({"1700000000002-Drop.ts": TYPEORM.replace(
        'ADD "subtitle" character varying', 'DROP COLUMN "title"').replace("{DOWN}", "{" + TYPEORM_REAL_DOWN + "}")},
     [("DROP COLUMN", '"post"."title"', 7)]),
    ({"1614519211000-PostRefactoring.ts": """\
        import { MigrationInterface, QueryRunner } from "typeorm"

        export class PostRefactoringTIMESTAMP implements MigrationInterface {
            async up(queryRunner: QueryRunner): Promise<void> {
                await queryRunner.query(
                    `ALTER TABLE "post" RENAME COLUMN "title" TO "name"`,
                )
            }

            async down(queryRunner: QueryRunner): Promise<void> {
                await queryRunner.query(
                    `ALTER TABLE "post" RENAME COLUMN "name" TO "title"`,
                ) // reverts things made in "up" method
            }
        }
        """}, [("RENAME COLUMN", '"post"."title" to "name"', 6)]),
    ({"1700000000003-DropTable.js": """\
        module.exports = class DropTable1700000000003 {
          async up(queryRunner) {
            await queryRunner.dropTable("question");
          }
          async down(queryRunner) {
            await queryRunner.query(`CREATE TABLE "question" ("id" SERIAL NOT NULL)`);
          }
        };
        """}, [("DROP TABLE", "question", 3)]),
    ({"20240101-pets.js": DB_MIGRATE_TEMPLATE.replace(
        "UP", "return db.renameTable('pets', 'animals');")}, [("RENAME TABLE", "pets to animals", 18)]),
    ({"20240101120000_drop.sql": goose(GOOSE_DOWN).replace("CREATE TABLE post (", "DROP TABLE comment;\n"
                                                          "CREATE TABLE post (")},
     [("DROP TABLE", "comment", 3)]),
    ({"V3__drop.sql": "-- remove the old column\nALTER TABLE users DROP COLUMN legacy;\n",
      "U3__drop.sql": "ALTER TABLE users ADD COLUMN legacy text;\n"}, [("DROP COLUMN", "users.legacy", 2)]),
])
def test_destructive_operations_of_the_up_are_found(scenario, files: dict[str, str],
                                                    expected: list[tuple[str, str, int]]) -> None:
    findings = [f for f in run(scenario(files)) if f.check == pf.FRAMEWORK_DESTRUCTIVE]
    got = [(f.message.split(" runs ", 1)[1].split(" on ", 1)[0], f.message.split(" on ", 1)[1].split(" (`", 1)[0],
            int(f.message.split("up (line ", 1)[1].split(")", 1)[0])) for f in findings]
    assert got == expected
    assert {f.severity for f in findings} == {"failure"}


@pytest.mark.parametrize("files", [
    # drops in the down are what a down is for
    {"8e4b7c1d2a65_add.py": alembic(ALEMBIC_ADD, ALEMBIC_DROP)},
    {"20240101_users.js": dedent(KNEX_UP) + "\n" + dedent(KNEX_DOWN)},
    {"20240101120000_post.sql": goose(GOOSE_DOWN)},
    # words in comments and strings, and a value built from SQL (knex.raw as a default) are not operations
    {"20240101_users.js": """\
        // knex.schema.dropTable('users') once ran here
        exports.up = function(knex) {
          /* table.dropColumn('email') */
          return knex.schema.createTable('events', function (table) {
            table.string('note').defaultTo('DROP TABLE users');
            table.timestamp('at').notNullable().defaultTo(knex.raw('now()'));
          });
        };
        exports.down = (knex) => knex.schema.dropTable('events');
        """},
    {"1_comment.py": alembic('def upgrade():\n    # op.drop_column("account", "name")\n'
                             '    op.add_column("account", sa.Column("note", sa.Text, server_default="DROP TABLE x"))\n',
                             'def downgrade():\n    op.drop_column("account", "note")\n')},
    # an added NOT NULL column with a server-side default, a serial, an identity: no hazard
    {"1_defaults.py": alembic(
        "def upgrade():\n    op.add_column('a', sa.Column('n', sa.Integer, nullable=False, server_default='0'))\n"
        "    op.add_column('a', sa.Column('id2', sa.BigInteger, sa.Identity(), nullable=False))\n",
        "def downgrade():\n    op.drop_column('a', 'id2')\n    op.drop_column('a', 'n')\n")},
    {"1700000000001_add.js": "exports.up = (pgm) => {\n  pgm.addColumns('orders', {\n"
                             "    discount_cents: { type: 'integer', notNull: true, default: 0 },\n"
                             "    seq: { type: 'serial', notNull: true },\n  });\n};\n"},
])
def test_drops_in_the_down_and_non_operations_are_not_destructive(scenario, files: dict[str, str]) -> None:
    assert [f for f in run(scenario(files)) if f.check == pf.FRAMEWORK_DESTRUCTIVE] == []


def test_destructive_up_with_a_backup_step_is_a_warning(scenario) -> None:
    files = {"1_drop.py": alembic("def upgrade():\n    op.drop_table('account')\n",
                                  "def downgrade():\n    op.create_table('account', sa.Column('id', sa.Integer))\n")}
    f = run(scenario(files, BACKUP_RUNBOOK))
    assert summary(f) == [(pf.FRAMEWORK_DESTRUCTIVE, "warning")]
    assert "rehearse the restore" in f[0].message and f[0].file.endswith("1_drop.py")
    assert (f"Alembic migration 8e4b7c1d2a65 up (line {ALEMBIC_BODY}) runs DROP TABLE on account "
            "(`op.drop_table('account')`)") in f[0].message


# ══ what is (not) read as a migration ═════════════════════════════════════
def test_alembic_env_and_versions_directory(tmp_path: Path) -> None:
    """migrations.files may name Alembic's directory (env.py beside versions/): env.py is no revision."""
    (tmp_path / "versions").mkdir()
    (tmp_path / "env.py").write_text("from alembic import context\n\ndef run_migrations_online():\n    pass\n")
    (tmp_path / "versions" / "8e4b7c1d2a65_add.py").write_text(alembic(ALEMBIC_ADD, ALEMBIC_DROP))
    (tmp_path / "versions" / "helpers.py").write_text("def upgrade():\n    pass\n")  # no revision, no alembic
    (tmp_path / "knexfile.js").write_text("module.exports = { client: 'pg' };\n")
    (tmp_path / "0001_init.up.sql").write_text("CREATE TABLE t (id int);\n")  # golang-migrate's: not read here
    loaded = load_framework_migrations(tmp_path)
    assert [(m.tool, m.name, m.up.state, m.down.state) for m in loaded.migrations] == [
        ("Alembic", "8e4b7c1d2a65", "code", "code")]
    assert loaded.unreadable == []


def test_a_library_that_cannot_be_told_is_named_javascript(scenario) -> None:
    f = run(scenario({"20240101_x.js": "exports.up = async (k) => {\n  await k.schema.dropTable('users');\n};\n"}))
    assert sorted(summary(f)) == [(pf.FRAMEWORK_DESTRUCTIVE, "failure"), (pf.FRAMEWORK_DOWN, "failure")]
    down = next(x for x in f if x.check == pf.FRAMEWORK_DOWN)
    assert down.message.startswith("JavaScript migration 20240101_x.js has no down while its up changes the schema")
    assert "migrating it down fails: there is no down to run" in down.message


def test_sql_the_reader_cannot_see_counts_as_a_schema_change(scenario) -> None:
    """`pgm.sql(statement)` with a variable: nothing says the up leaves the schema alone."""
    f = run(scenario({"1700000000001_built.js": "const statement = require('./ddl');\n"
                                                "exports.up = (pgm) => { pgm.sql(statement); };\n"
                                                "exports.down = () => {};\n"}))
    assert summary(f) == [(pf.FRAMEWORK_DOWN, "failure")] and "pgm.sql(statement)" in f[0].message


def test_a_file_that_does_not_parse_is_an_inputs_warning(scenario) -> None:
    s = scenario({"1700000000001_broken.js": "exports.up = (pgm) => {\n  pgm.dropTable('users'\n};\n",
                  "8e4b7c1d2a65_broken.py": "def upgrade(:\n    pass\n"})
    f = pf.run_checks(s, only=FRAMEWORK_CHECKS)
    assert sorted((x.check, Path(x.file).name) for x in f) == [
        (pf.INPUTS, "1700000000001_broken.js"), (pf.INPUTS, "8e4b7c1d2a65_broken.py")]
    assert all("does not parse" in x.message for x in f)


def test_validation_rejects_a_framework_migration_that_is_not_utf8(tmp_path: Path, kit: SimpleNamespace) -> None:
    doc = kit.minimal_doc(migrations={"up": "npm run migrate:up", "files": "migrations"})
    d = kit.write_scenario(tmp_path, "latin", doc)
    (d / "migrations").mkdir()
    (d / "migrations" / "1700000000001_add.js").write_bytes(b"// caf\xe9\nexports.up = () => {};\n")
    res = CliRunner().invoke(cli, ["validate", str(d)])
    assert res.exit_code == 2 and "1700000000001_add.js is not UTF-8" in res.output


# ══ the demo's own migrations ═════════════════════════════════════════════
@pytest.mark.parametrize(("name", "expected"), [
    ("node-pg-migrate-noop-down", [(pf.FRAMEWORK_DOWN, "failure")]),
    ("alembic-noop-downgrade", [(pf.FRAMEWORK_DOWN, "failure")]),
    ("golang-migrate-empty-down", [(pf.NOOP_DOWN, "failure")]),
    ("node-pg-migrate-rollback", []),
    ("alembic-rollback", []),
    # their migrations are right: the runbook forgets them (the rehearsal says so)
    ("node-pg-migrate-forgot-down", []),
    ("alembic-forgot-downgrade", []),
    ("golang-migrate-forgot-down", []),
    ("golang-migrate-rollback", []),
])
def test_demo_framework_scenarios(name: str, expected: list[tuple[str, str]]) -> None:
    assert summary(pf.run_checks(load_scenario(EXAMPLES / name))) == expected


def test_cli_check_flags_the_noop_down_scenarios_only() -> None:
    good = [str(EXAMPLES / n) for n in ("node-pg-migrate-rollback", "alembic-rollback", "golang-migrate-rollback")]
    assert CliRunner().invoke(cli, ["check", *good]).exit_code == 0
    for name in ("node-pg-migrate-noop-down", "alembic-noop-downgrade"):
        res = CliRunner().invoke(cli, ["check", str(EXAMPLES / name)])
        assert res.exit_code == 1 and "framework-down" in res.output, res.output


def test_demo_release_migrations_read_as_written() -> None:
    """Every framework migration the demo ships is read with the down its file declares."""
    read = {m.file.relative_to(REPO).as_posix(): (m.tool, m.up.state, m.down.state)
            for d in ("demo/alembic/migrations", "demo/alembic/release-migrations/v2",
                      "demo/alembic/release-migrations/v3", "demo/node/migrations",
                      "demo/node/release-migrations/v2", "demo/node/release-migrations/v3")
            for m in load_framework_migrations(REPO / d).migrations}
    assert read == {
        "demo/alembic/migrations/versions/3f1c2a9d7b10_init.py": ("Alembic", "code", "code"),
        "demo/alembic/release-migrations/v2/8e4b7c1d2a65_add_nickname.py": ("Alembic", "code", "code"),
        "demo/alembic/release-migrations/v3/5c2d9e7a4b18_add_discount.py": ("Alembic", "code", "empty"),
        "demo/node/migrations/1700000000000_init.js": ("node-pg-migrate", "code", "code"),
        "demo/node/release-migrations/v2/1700000000001_add-nickname.js": ("node-pg-migrate", "code", "code"),
        "demo/node/release-migrations/v3/1700000000001_add-discount.js": ("node-pg-migrate", "code", "empty"),
    }
