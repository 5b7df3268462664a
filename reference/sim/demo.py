"""``sdl demo``: one secure-aggregation round on small data, explained step by step.

Spec: spec/04-shamir.md (sharing, reconstruction, robust reconstruction)

Every node is both a contributor and an aggregator. Each node shares its
private vector among all nodes with threshold t; each aggregator adds up the
shares it holds; any t + 1 of those partial sums rebuild the sum of all
inputs, and nothing less reveals anything. One aggregator drops out and,
when there is enough redundancy, another one lies about its partial sum;
robust reconstruction names it and corrects around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from protocol.errors import ParameterError
from protocol.field import Field31
from protocol.shamir import Shamir, Share
from protocol.xof import Seed, Tag, Xof, derive_seed

#: Private inputs are drawn from [-INPUT_RANGE, INPUT_RANGE].
INPUT_RANGE = 100
#: Most values of one vector the steps spell out; the rest are counted (the ``--json``
#: fields hold every value).
SHOWN_VALUES = 8


def _show(values: list[int]) -> str:
    """``values`` in brackets, the first :data:`SHOWN_VALUES` only and the rest counted."""
    if len(values) <= SHOWN_VALUES:
        return str(values)
    head = ", ".join(str(v) for v in values[:SHOWN_VALUES])
    return f"[{head}, … ({len(values) - SHOWN_VALUES} more; --json for all)]"


@dataclass
class DemoResult:
    """What the demo did and found (also its ``--json`` output)."""

    nodes: int
    threshold: int
    dimension: int
    inputs: list[list[int]]
    plaintext_sum: list[int]
    dropped_aggregator: int
    tampered_aggregator: int | None
    reconstructed_sum: list[int]
    flagged_aggregators: list[int]
    matches: bool
    steps: list[str] = field(default_factory=list)


def run_demo(*, seed: Seed, nodes: int = 7, threshold: int = 2, dimension: int = 4) -> DemoResult:
    """Run one round; every random choice comes from ``seed`` through the XOF.

    Raises:
        ParameterError: if ``nodes < threshold + 2`` (one dropout must leave
            t + 1 partial sums) or ``dimension < 1``.
    """
    if dimension < 1:
        raise ParameterError(f"dimension must be >= 1; got {dimension}")
    if nodes < threshold + 2:
        raise ParameterError(
            f"nodes must be >= threshold + 2 = {threshold + 2} so that one dropout "
            f"still leaves t + 1 partial sums; got {nodes}"
        )
    fld = Field31
    sh = Shamir(fld, threshold)
    points = list(range(1, nodes + 1))
    steps: list[str] = []
    say = steps.append

    inputs_rng = Xof(seed, Tag("demo.inputs"))
    raw = inputs_rng.uniform_ints(2 * INPUT_RANGE + 1, count=nodes * dimension).astype(np.int64)
    inputs = (raw - INPUT_RANGE).reshape(nodes, dimension)
    true_sum = inputs.sum(axis=0)
    say(
        f"1. {nodes} nodes each hold a private vector of {dimension} integers in "
        f"[-{INPUT_RANGE}, {INPUT_RANGE}]. Node i is also aggregator i, at point x = i."
    )
    say(
        f"2. Each node maps its vector into GF(2^31 - 1) (negative v becomes p + v) and "
        f"Shamir-shares it with threshold t = {threshold}: a random polynomial of degree "
        f"{threshold} per coordinate, one evaluation per aggregator. Any {threshold} "
        f"aggregators together see only uniformly random values."
    )
    held: list[list[Share]] = [[] for _ in points]
    for i in range(nodes):
        node_seed = derive_seed(seed, Tag("demo.share", (i,)))
        for j, s in enumerate(
            sh.share(fld.signed_encode(inputs[i]), points=points, seed=node_seed)
        ):
            held[j].append(s)
    sample = held[0][1].y.to_ints()
    say(f"   For example, aggregator 1 holds this share of node 2's input: {_show(sample)}.")

    partial = [
        Share(x=points[j], y=fld.stack([s.y for s in held[j]]).sum(axis=0)) for j in range(nodes)
    ]
    say(
        "3. Each aggregator adds up the shares it holds, coordinate by coordinate. By "
        "linearity, its partial sum is a share of the sum of all inputs."
    )
    dropped = nodes  # the last aggregator
    available = [p for p in partial if p.x != dropped]
    say(f"4. Aggregator {dropped} crashes before releasing its partial sum.")

    redundancy = len(available) - (threshold + 1)
    max_errors = redundancy // 2
    tampered: int | None = None
    if max_errors >= 1:
        tampered = 2
        bump = fld(np.ones(dimension, dtype=np.uint64))
        available = [Share(x=p.x, y=p.y + bump) if p.x == tampered else p for p in available]
        say(
            f"5. Aggregator {tampered} releases a wrong partial sum. With "
            f"{len(available)} partial sums and t + 1 = {threshold + 1} needed, up to "
            f"{max_errors} wrong one(s) can be corrected."
        )
    else:
        say(
            f"5. (With {len(available)} partial sums and t + 1 = {threshold + 1} needed, "
            "there is no redundancy to correct a lie; run with more nodes to see that.)"
        )
    rec = sh.robust_reconstruct(available, max_errors=max_errors)
    got = rec.secret.signed_decode()
    say(
        f"6. Robust reconstruction rebuilds the sum from the {len(available)} partial sums"
        + (f" and flags aggregator(s) {list(rec.bad_points)}." if rec.bad_points else ".")
    )
    matches = bool(np.array_equal(got, true_sum))
    say(
        f"7. Decoded sum {_show(got.tolist())} {'equals' if matches else 'DIFFERS FROM'} the "
        f"plaintext sum {_show(true_sum.tolist())}. No node ever saw another node's input."
    )
    say(
        "   (Distributed DP noise joins this round in spec section 6: each node adds a "
        "share of integer noise before sharing, and only the noisy sum is released.)"
    )
    return DemoResult(
        nodes=nodes,
        threshold=threshold,
        dimension=dimension,
        inputs=inputs.tolist(),
        plaintext_sum=true_sum.tolist(),
        dropped_aggregator=dropped,
        tampered_aggregator=tampered,
        reconstructed_sum=got.tolist(),
        flagged_aggregators=list(rec.bad_points),
        matches=matches,
        steps=steps,
    )
