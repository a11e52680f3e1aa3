"""Test support: real servers and real worker processes."""
