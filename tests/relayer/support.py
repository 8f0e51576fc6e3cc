"""A whole relayer path in one test process: :mod:`kakehashi.ops.sandbox` (the tests' world)."""

from kakehashi.ops.sandbox import GAS, OPERATOR, PORT, SECRET, VERSION, World, world

__all__ = ["GAS", "OPERATOR", "PORT", "SECRET", "VERSION", "World", "world"]
