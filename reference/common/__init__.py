"""Shared by every room: atomic file writes and seeds."""
