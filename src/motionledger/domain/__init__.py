"""The domain: the events, the rules that judge them, and the read tables they fold into.

Pure: no I/O, no clocks, no broker, database or web library. It imports nothing of the
package but itself (msgspec and the standard library only), so every rule here can be
tested, and reused by the in-memory twin, without a server.
"""
