"""Operations: one file each, registered with ``shared.registry.operation``.

Each module holds one ``handler(ctx, args) -> dict | None``: stateless, against Redis, with no
transport code (no flask, asyncio or socket imports).
"""
