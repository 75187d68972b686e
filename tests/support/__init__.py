"""Helpers shared by the test suite (core tests in tests/, plugin tests beside each plugin)."""
