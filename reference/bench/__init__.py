"""Benchmarks: every time is a ratio against a baseline measured in the same run.

Spec: spec/09-protocol.md
"""
