#!/usr/bin/env python3
"""seed [FILE]: runs an SQL file (default /app/seed.sql) against DATABASE_URL
in one transaction. The app image has no psql; this is its stand-in."""
import os
import sys

import psycopg


def main(argv):
    path = argv[0] if argv else "/app/seed.sql"
    url = os.environ.get("DATABASE_URL", "")
    if not url:
        print("seed: DATABASE_URL is not set (expected postgres://user:password@host:5432/dbname?sslmode=disable)", file=sys.stderr)
        return 1
    try:
        with open(path, encoding="utf-8") as f:
            sql = f.read()
        with psycopg.connect(url, connect_timeout=10) as conn:  # commits on success
            conn.execute(sql)
    except (OSError, psycopg.Error) as e:
        print(f"seed: {path}: {str(e).strip()}", file=sys.stderr)
        return 1
    print(f"seed: applied {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
