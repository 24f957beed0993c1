"""Fixture modules live in tests/fixtures; this file only registers them."""

pytest_plugins = [
    "tests.fixtures.store",
    "tests.fixtures.app",
    "tests.fixtures.hashing",
    "tests.fixtures.servers",
    "tests.fixtures.sshd",
    "tests.fixtures.hardening",
    "tests.fixtures.clusters",
    "tests.fixtures.datasources",
    "tests.fixtures.probing",
    "tests.fixtures.tls",
    "tests.fixtures.engines",
    "tests.fixtures.peers",
    "tests.fixtures.mariadb_private",
    "tests.fixtures.live",
    "tests.fixtures.mongo",
    "tests.fixtures.receivers",
    "tests.fixtures.browser",
]
