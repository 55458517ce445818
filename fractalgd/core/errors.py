"""The errors a user can cause. Library functions raise them; only the CLI turns them into exit codes."""

from __future__ import annotations


class ConfigError(ValueError):
    """A recipe or an input that cannot be used; the message names the key and the problem."""


class CostError(ConfigError):
    """Work whose estimated cost (time, memory, disk) exceeds a limit; the message names the key and the estimate."""


class UserCodeError(ConfigError):
    """A user's loss function raised or tried to exit; the message names the loss."""
