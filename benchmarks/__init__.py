"""Benchmarks of dicomweb_client against the reference package (see README.md here)."""
