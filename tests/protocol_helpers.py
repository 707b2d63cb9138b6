"""Helpers shared by the protocol area's tests."""
