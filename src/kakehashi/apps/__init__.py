"""The business use cases built on the Cross Framework (DESIGN.md §7)."""
