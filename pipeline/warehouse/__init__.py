"""The DuckDB warehouse: schema (schema.sql), connections and lock (db), checks, exports, SQL access."""
