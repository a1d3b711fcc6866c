"""The reliability suite attacks djtui: faults, two operators at once, hostile input, load, secrets.

Every case is listed in docs/RELIABILITY.md with the test that proves it. Fixtures shared by
more than one file live here; the session ``server`` fixture comes from tests/conftest.py.
"""
