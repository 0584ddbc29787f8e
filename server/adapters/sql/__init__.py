"""SQL persistence: SQLAlchemy 2 models, Alembic migrations, repositories (SQLite or PostgreSQL)."""
