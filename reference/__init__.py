"""What runs SDL's core: the command line, test vectors, demos and benchmarks.

This package may do I/O, read clocks and draw seeds from the operating
system; ``protocol`` never imports it.
"""
