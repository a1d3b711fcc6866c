"""The conformance suite: djtui and the real tools (Spyglass, DataJoint 0.14 and 2.3, DataJoint-Cleaner,
the backup manager's shipped config) answer the same questions on the same state.

Every test here carries the ``conformance`` marker (``pytest -m conformance`` runs only these,
``-m 'not conformance'`` skips them). The tools install once into ``tools.cache_root()``.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "tests/conformance/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.conformance)


@pytest.fixture(scope="session")
def s3_server(s3_endpoint: str) -> str:
    """The suite's local S3 server (moto, ``tests/conftest.py``); yields its endpoint ``127.0.0.1:PORT``."""
    return s3_endpoint
