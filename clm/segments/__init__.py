"""Segments: dynamic groups of customers that follow a condition, and static lists."""
