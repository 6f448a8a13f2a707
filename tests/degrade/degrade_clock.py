"""The recovery time the degradation tests' machines use (seconds of their manual clock)."""

RECOVERY = 3.0
