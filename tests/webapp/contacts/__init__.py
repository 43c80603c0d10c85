"""Contacts: LTV, RFM and the contact pages."""
