"""The SQL of the SQLite store, one module per area: plain functions of a `Tx`.

Each function runs inside one ``BEGIN IMMEDIATE`` transaction opened by `SQLiteStore`, so a read
and the write that depends on it can never interleave with another process.
"""
