"""Private database servers that djtui starts and owns: a throwaway server in a directory of its own.

Production uses them too: restore-verify loads a dump into one, `export verify` loads an export.
The tests and the demo lab run on them. One module per server family (``mariadb.py`` runs the
installed ``mariadbd``/``mysqld``); a second backend adds a module. They may import
``djtui.config``, ``djtui.errors`` and ``services.database`` / ``services.commandlog``: nothing above
the services layer.
"""
