"""The relay: a TCP line server (docs/RELAY.md) for legacy clients, telnet users and game servers.

Layers, each usable without the next: ``protocol`` (pure parse/render), ``session`` (one
connection's mode, caller and guards), ``server`` (asyncio I/O, limits, thread pool), ``fanout``
(live pushes from Redis streams) and ``mailwatch`` (mail notices for telnet players).
Run it with ``python -m relay``; see docs/RELAY.md.
"""
