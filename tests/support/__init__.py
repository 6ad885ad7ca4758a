"""Test support: real PostgreSQL and NATS, found or started, and helpers around them."""
