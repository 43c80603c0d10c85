"""RQ job functions: take ids and plain values, reload rows, call plain functions in webapp.services."""
