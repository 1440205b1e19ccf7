"""Storage: SQLAlchemy Core tables, engines and Alembic migrations.

SQLite (a file) is the embedded default; PostgreSQL (psycopg 3) is production. The
same tables and queries serve both.
"""
