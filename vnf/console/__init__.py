"""Presentation for the ``vnf`` CLI: tables, JSON and CSV, human units (pure)."""
