"""Helpers for testing zoo and zoo plugins: a local hub server and pytest fixtures."""
