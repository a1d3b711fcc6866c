"""Private database servers that djtui starts and owns: a throwaway server in a directory of its own.

Production uses them too: restore-verify loads a dump into one, `export verify` loads an export.
The tests and the demo lab run on them. ``process.py`` holds what any server family needs (free
port, dying with the parent, stopping, the detached server's state file, ``read_state`` and
``stop_detached``); one module per family holds the rest (``mariadb.py``: finding ``mariadbd`` /
``mysqld``, initialising the data directory, the admin account). A PostgreSQL module sits beside
``mariadb.py`` and builds on ``process.py``. They may import ``djtui.config``, ``djtui.errors`` and
``services.database`` / ``services.commandlog``: nothing above the services layer.
"""
