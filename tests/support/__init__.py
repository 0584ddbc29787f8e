"""Helpers shared by the tests: one bounded wait, one running server, one edge-configuration builder."""
