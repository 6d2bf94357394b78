"""Domain storage: one module per operation group (records, mail, messages, status, settings,
limits, ...). Each holds that group's Redis reads, writes and Lua scripts; keys come from
``shared.keys``."""
