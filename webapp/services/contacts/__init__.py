"""Contacts: matching and merging, LTV, RFM, insight and export.

May call `delivery` (event roll-ups for a contact's activity) and `platform`.
"""
