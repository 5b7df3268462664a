"""SDL's normative core: pure, deterministic, no I/O.

Spec: spec/README.md

Modules map one to one onto spec sections: ``field`` (spec/02-field.md),
``xof`` (spec/03-xof.md), ``shamir`` (spec/04-shamir.md); ``errors`` is
described in spec/01-conventions.md. Nothing here reads the clock, the
operating system's randomness or the network, and nothing here imports
``reference``.
"""
