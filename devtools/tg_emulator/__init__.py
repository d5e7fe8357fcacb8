"""Telegram Bot API emulator for end-to-end tests, benchmarks and the sandbox mode."""

from .client import EmulatorClient, EmulatorError
from .server import EmulatorServer

__all__ = ["EmulatorClient", "EmulatorError", "EmulatorServer"]
