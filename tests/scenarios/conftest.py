"""The operator-step tests reuse the whole-stack fixture of the end-to-end tests (real broker, server, edge)."""

from tests.e2e.conftest import stack  # noqa: F401  (re-exported pytest fixture)
