"""The suite: tests/conftest.py starts a throwaway embedded Valkey; tests/world.py builds a
world of real fixtures for running every operation."""
