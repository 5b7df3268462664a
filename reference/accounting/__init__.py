"""Privacy accountants beside protocol/accounting.py's RDP one: PLD, and the best of both.

Spec: spec/08-accounting.md#pld-accountant
"""

from reference.accounting.pld import (
    ACCOUNTANTS,
    BestResult,
    PldResult,
    best_epsilon,
    calibrate_with,
    epsilon_with,
    pld_epsilon,
)

__all__ = [
    "ACCOUNTANTS",
    "BestResult",
    "PldResult",
    "best_epsilon",
    "calibrate_with",
    "epsilon_with",
    "pld_epsilon",
]
