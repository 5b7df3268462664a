"""Sealing frames: the randomized half of the secure channels (spec/14-channels.md)."""
