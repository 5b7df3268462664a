"""The oracle kit: test vectors (generation, checking, format) and the conformance harness."""
