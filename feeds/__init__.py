"""Pure catalog library: source readers, product normalisation, feed writers, feed validation.

Imports neither `webapp` nor `workers`.
"""
