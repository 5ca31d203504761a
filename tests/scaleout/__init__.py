"""Multi-process tests: several app servers and reconcile runs on one PostgreSQL and one Redis."""
