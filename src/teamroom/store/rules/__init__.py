"""The rules of the store, one module per area: plain synchronous functions of a `Tx`.

Each runs inside one transaction that a backend opens and serialises (see `teamroom.store.base`),
so a read and the write that depends on it can never interleave with another process. A rule
names its queries (``tx.all("messages.lease_ready", ...)``); it holds no SQL of its own, so every
backend runs the same rules on its own dialect of the queries.
"""
