"""The terminal app: ``app`` (DjtuiApp, its modes and global keys), ``context`` (the typed AppContext every
screen shares), ``screens/`` and ``widgets/``.

May import services, domain, config and errors; never the CLI or the tools (demo, labschema).
"""
