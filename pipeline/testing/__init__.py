"""Test support: a local emulator of the model APIs (see emulator.py)."""
from pipeline.testing.emulator import Emulator, RemoteEmulator

__all__ = ["Emulator", "RemoteEmulator"]
