"""Build simulation scenarios from a few numbers, as ``sdl simulate`` and the vectors do.

Spec: spec/12-transcripts.md#scenario
"""

from __future__ import annotations

from collections.abc import Mapping
from fractions import Fraction

from protocol.errors import ParameterError
from protocol.field import Field, Field31
from protocol.noise_plan import plan
from protocol.params import RoundParams, select_committee
from protocol.xof import Seed, Tag, Xof, derive_seed
from reference.sim.simulate import Channels, Network, Scenario


def _pick(xof: Xof, pool: list[int], count: int) -> list[int]:
    """``count`` distinct members of ``pool``, by a partial Fisher–Yates shuffle."""
    pool = list(pool)
    for i in range(count):
        j = i + xof.uniform_int(len(pool) - i)
        pool[i], pool[j] = pool[j], pool[i]
    return sorted(pool[:count])


def build(
    *,
    master: Seed,
    nodes: int,
    threshold: int,
    dropouts: int = 0,
    colluders: int = 0,
    max_dropouts: int | None = None,
    committee: int | None = None,
    min_contributors: int | None = None,
    dimension: int = 8,
    packing: int = 1,
    mechanism: str = "skellam",
    target_variance: Fraction = Fraction(1000),
    field: type[Field] = Field31,
    window: int = 4,
    network: Network | None = None,
    crashes: Mapping[int, int] | None = None,
    tamper: tuple[int, ...] = (),
    round: int = 0,
    noise_sources: int | None = None,
    receivers: int | None = None,
    precover: bool = False,
    updates: Mapping[int, Field] | None = None,
    channels: Channels | None = None,
    max_byzantine: int = 0,
    byzantine: Mapping[int, str] | None = None,
    failover: int = 0,
) -> Scenario:
    """A scenario: ``nodes`` nodes, all contributors and receivers; who drops and colludes.

    Spec: spec/12-transcripts.md#scenario

    - The session id is ``derive_seed(master, Tag("sim.session"))``.
    - The aggregators are all nodes, or ``committee`` of them drawn by
      :func:`~protocol.params.select_committee`; the first drawn coordinates.
    - ``dropouts`` nodes other than the coordinator, drawn from
      ``Xof(master, Tag("sim.dropouts"))``, crash before they have sent all
      their initial shares: each after ``uniform_int(m)`` sends, with ``m``
      the number of aggregators. ``crashes`` adds explicit ones.
    - ``colluders`` contributors collude: the Byzantine ones first (they know
      their own noise), the rest drawn from ``Xof(master, Tag("sim.colluders"))``;
      the noise plan's ``T`` is ``colluders``.
    - The plan's ``D`` is ``max_dropouts`` (default ``dropouts``); the minimum
      contributor set is ``min_contributors`` (default ``min(n, max(2, n − D))``).
    - ``noise_sources`` (default: all) and ``receivers`` (default: all) take
      the first nodes of the same public draw as the committee
      (:func:`~protocol.params.select_committee` over every node), so the
      committee's members are the first noise sources and the coordinator
      the first receiver. ``precover`` makes the plan cover ``D`` dropouts
      up front (required when the noise sources are not all the nodes).
    - ``channels`` seals every message between two nodes (spec/14-channels.md);
      ``None`` (the default) hands them over in the clear.
    - ``failover`` backup coordinators take over in draw order when the
      coordinator crashes: the next ones drawn after it (spec/09-protocol.md#failover).
    - ``max_byzantine`` is the round's ``f`` (spec/09-protocol.md#byzantine-nodes);
      ``byzantine`` names the nodes that deviate, and how
      (spec/12-transcripts.md#byzantine-nodes).

    Raises:
        ParameterError: a count is out of range (the message names it).
    """
    if type(nodes) is not int or nodes < 2:
        raise ParameterError(f"nodes must be an int >= 2; got {nodes!r}")
    ids = tuple(range(1, nodes + 1))
    session = derive_seed(master, Tag("sim.session"))
    size = nodes if committee is None else committee
    # A partial Fisher–Yates prefix: the first `size` of the full draw are the committee.
    order = select_committee(session=session, round=round, nodes=ids, size=nodes)
    if type(size) is not int or not 1 <= size <= nodes:
        raise ParameterError(f"committee must be an int in [1, {nodes}]; got {size!r}")
    coordinator, aggregators = order[0], tuple(sorted(order[:size]))
    if type(failover) is not int or not 0 <= failover < size:
        raise ParameterError(
            f"failover must be an int in [0, {size - 1}] (backups are aggregators other than "
            f"the coordinator); got {failover!r}"
        )
    chosen: dict[str, tuple[int, ...] | None] = {}
    for name, count in (("noise_sources", noise_sources), ("receivers", receivers)):
        if count is not None and (type(count) is not int or not 1 <= count <= nodes):
            raise ParameterError(f"{name} must be an int in [1, {nodes}]; got {count!r}")
        chosen[name] = None if count is None or count == nodes else tuple(sorted(order[:count]))
    big_d = dropouts if max_dropouts is None else max_dropouts
    if type(dropouts) is not int or not 0 <= dropouts <= nodes - 1:
        raise ParameterError(
            f"dropouts must be an int in [0, nodes − 1 = {nodes - 1}]; got {dropouts!r}"
        )
    if type(colluders) is not int or not 0 <= colluders <= nodes:
        raise ParameterError(f"colluders must be an int in [0, {nodes}]; got {colluders!r}")
    sources = chosen["noise_sources"]
    noise = plan(
        mechanism=mechanism,
        target_variance=target_variance,
        contributors=nodes if sources is None else len(sources),
        max_dropouts=big_d,
        max_colluders=colluders,
        precovered=big_d if precover else 0,
    )
    if min_contributors is None:
        min_contributors = min(nodes, max(2, nodes - big_d))
    params = RoundParams(
        session=session,
        round=round,
        field=field,
        nodes=ids,
        contributors=ids,
        aggregators=aggregators,
        coordinator=coordinator,
        threshold=threshold,
        packing=packing,
        dimension=dimension,
        noise=noise,
        min_contributors=min_contributors,
        window=window,
        noise_sources=sources,
        receivers=chosen["receivers"],
        max_byzantine=max_byzantine,
        backups=tuple(order[1 : 1 + failover]),
    )
    xof = Xof(master, Tag("sim.dropouts"))
    dropped = _pick(xof, [i for i in ids if i != coordinator], dropouts)
    all_crashes = {i: xof.uniform_int(len(aggregators)) for i in dropped}
    all_crashes.update(crashes or {})
    # Byzantine contributors know their own noise: they are colluders first.
    deviant = sorted(i for i in (byzantine or {}) if i in ids)[:colluders]
    rest = [i for i in ids if i not in deviant]
    colluding = deviant + _pick(Xof(master, Tag("sim.colluders")), rest, colluders - len(deviant))
    return Scenario(
        params=params,
        master=master,
        network=network or Network(),
        crashes=all_crashes,
        colluders=tuple(sorted(colluding)),
        tamper=tamper,
        updates=updates,
        channels=channels,
        byzantine=dict(byzantine or {}),
    )
