"""What stores send in: the canonical order, checkout, product push, back-in-stock request and onsite event,
their field types, and the cleaning that accepts partly unusable input with warnings (links, phones)."""
