"""Test support: a local emulator of the model APIs (see emulator.py)."""
from tests.emulator.emulator import Emulator, RemoteEmulator

__all__ = ["Emulator", "RemoteEmulator"]
