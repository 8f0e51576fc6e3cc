"""The kakehashi command line."""
