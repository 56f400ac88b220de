"""Fixtures shared by the integration tests: a real registry (builder.registry tests)."""

from tests.integration.registry_fixture import auth_registry, registry

__all__ = ["auth_registry", "registry"]
