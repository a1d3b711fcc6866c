"""How to get it: one module or package per capability, synchronous (screens run them in threads); all I/O
lives here (database, files, rsync, S3, private servers).

May import ``djtui.domain``, ``djtui.config`` and ``djtui.errors``; never ``djtui.tui`` or ``djtui.cli``
and never Textual.
"""
