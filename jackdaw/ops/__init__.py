"""Operator tooling behind `jackdaw accounts|orders|certificates|order ...|check --show`.

- ``queries``: read-only views of the database as plain dataclasses (no printing)
- ``actions``: the few state changes an operator may make (retry / cancel an order)
- ``config``: the effective configuration, secrets masked
- ``render``: dataclasses → aligned text tables or JSON
- ``commands``: glue used by ``jackdaw.cli`` (open the database, call, print, exit code)
"""
