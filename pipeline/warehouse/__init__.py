"""The DuckDB warehouse: the contract (contract.py), connections, lock and transactions (db), migrations, checks, exports, SQL access."""
