"""Sending a reconcile's jobs to a platform's Catalog API: the rate-limited client and the run itself."""
