"""Apps that worker processes import in the end-to-end tests."""
