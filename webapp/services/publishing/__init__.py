"""Publishing: feed definitions, builds, the publish gate, serving and preview at stable URLs.

May call `catalog` (sync notes, applies in progress) and `platform`.
"""
