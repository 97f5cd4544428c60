-- An example baseline: pg_databases: [{name: app, baseline: example.sql}]. pgsql.user runs it
-- once, right after it creates the database: as the dbsu, in the new database, in one
-- transaction, stopping at the first error (psql -v ON_ERROR_STOP=1 --single-transaction).
-- The database's schemas and extensions exist already; its owner is set.
CREATE TABLE IF NOT EXISTS baseline_info (key text PRIMARY KEY, value text NOT NULL);
INSERT INTO baseline_info (key, value) VALUES
    ('baseline', 'example.sql'),
    ('database', current_database()),
    ('run_at', now()::text);
