"""Tools over finished stores: inspect (describe, check, verify) and show (figures)."""
