"""The errors a user can cause. Library functions raise them; only the CLI turns them into exit codes."""

from __future__ import annotations

MAX_MESSAGE = 400  # a message quotes the user's value: a 5000-character string is cut, not printed


def one_line(message: str) -> str:
    """The message on one line, at most MAX_MESSAGE characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_MESSAGE else f"{text[:300]} … {text[-80:]}"


class ConfigError(ValueError):
    """A recipe or an input that cannot be used; the message names the key and the problem."""

    def __init__(self, message: str = ""):
        super().__init__(one_line(message))


class CostError(ConfigError):
    """Work whose estimated cost (time, memory, disk) exceeds a limit; the message names the key and the estimate."""


class UserCodeError(ConfigError):
    """A user's loss function raised or tried to exit; the message names the loss."""
