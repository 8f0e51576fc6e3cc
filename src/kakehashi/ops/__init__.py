"""Operations: running Kakehashi's services (DESIGN.md §1, the top layer)."""
