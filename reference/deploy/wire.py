"""Requests and replies as Flower records. Spec: spec/15-deployment.md#records

A request or reply travels as one Flower ``Message`` whose ``RecordDict`` holds:

- ``"sdl"``: a ``ConfigRecord`` with one value, ``"control"``: the UTF-8 JSON of
  everything but the frames and the model (small: ids, timers, signed session keys);
- ``"frames"``: an ``ArrayRecord`` of the sealed frames, ``"0"``, ``"1"``, … in order,
  each a ``uint8`` array (Flower cuts every array into 5 MiB chunks on the wire, so a
  frame of any size crosses; a ``ConfigRecord`` value would be one unchunked blob);
- ``"model"``: an ``ArrayRecord`` with the public model, ``"params"`` (float64), on a
  round's first tick only;
- ``"release"`` (replies): an ``ArrayRecord`` with a receiver's released sum, ``"values"``,
  in the field's canonical bytes as ``uint8``.

The frames are sealed (spec/14-channels.md): the relay and Flower see their headers and
sizes, nothing else. The control part carries nothing secret.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

from protocol.errors import RemoteProtocolError
from reference.deploy.node import Reply, Request

CONTROL = "sdl"
FRAMES = "frames"
MODEL = "model"
RELEASE = "release"


def _frames_record(frames: list[bytes]) -> ArrayRecord:
    return ArrayRecord(
        {str(i): Array(np.frombuffer(f, dtype=np.uint8)) for i, f in enumerate(frames)}
    )


def _frames_of(content: RecordDict) -> list[bytes]:
    if FRAMES not in content.array_records:
        return []
    record = content.array_records[FRAMES]
    out = []
    for i in range(len(record)):
        try:
            out.append(record[str(i)].numpy().astype(np.uint8, copy=False).tobytes())
        except KeyError:
            raise RemoteProtocolError(f"frame {i} of {len(record)} is missing") from None
    return out


def _control(content: RecordDict) -> dict[str, Any]:
    try:
        raw = content.config_records[CONTROL]["control"]
        obj = json.loads(raw if isinstance(raw, bytes | str) else b"")
    except (KeyError, ValueError) as exc:
        raise RemoteProtocolError(f"a message without a readable control part: {exc}") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("the control part is not a JSON object")
    return obj


def _pack(control: dict[str, Any], frames: list[bytes]) -> RecordDict:
    content = RecordDict(
        {CONTROL: ConfigRecord({"control": json.dumps(control, separators=(",", ":")).encode()})}
    )
    if frames:
        content[FRAMES] = _frames_record(frames)
    return content


def _int_or_none(v: object) -> int | None:
    """A timer's stage or view as the control record carries it: an int, or null."""
    return None if v is None else int(v)  # type: ignore[call-overload]


def request_to_records(req: Request) -> RecordDict:
    control = {
        "op": req.op,
        "job": None if req.job is None else dict(req.job),
        "roster_sha256": req.roster_sha256,
        "suite": req.suite,
        "adverts": [dict(a) for a in req.adverts],
        "round": req.round,
        "start": req.start,
        "timeouts": [[role, stage, view] for role, stage, view in req.timeouts],
    }
    content = _pack(control, list(req.frames))
    if req.model is not None:
        content[MODEL] = ArrayRecord({"params": Array(np.ascontiguousarray(req.model, "<f8"))})
    return content


def request_from_records(content: RecordDict) -> Request:
    c = _control(content)
    model = None
    if MODEL in content.array_records:
        model = content.array_records[MODEL]["params"].numpy().astype(np.float64)
    try:
        return Request(
            op=str(c["op"]),
            job=c["job"],
            roster_sha256=c["roster_sha256"],
            suite=str(c["suite"]),
            adverts=list(c["adverts"]),
            round=int(c["round"]),
            start=bool(c["start"]),
            model=model,
            frames=_frames_of(content),
            timeouts=[
                (str(role), _int_or_none(stage), _int_or_none(view))
                for role, stage, view in c["timeouts"]
            ],
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise RemoteProtocolError(f"a request the node cannot read: {exc}") from None


def reply_to_records(reply: Reply) -> RecordDict:
    control = {
        "node": reply.node,
        "recipients": [to for to, _ in reply.frames],
        "timers": [[role, stage, windows, view] for role, stage, windows, view in reply.timers],
        "advert": reply.advert,
        "receiver": reply.receiver,
        "done": reply.done,
        "reasons": reply.reasons,
        "rejected": reply.rejected,
        "refused": reply.refused,
        "sampled": reply.sampled,
        "absent": reply.absent,
        "void": [[role, stage, view] for role, stage, view in reply.void],
    }
    content = _pack(control, [f for _, f in reply.frames])
    if reply.release is not None:
        content[RELEASE] = ArrayRecord({"values": Array(np.frombuffer(reply.release, np.uint8))})
    return content


def reply_from_records(content: RecordDict) -> Reply:
    c = _control(content)
    frames = _frames_of(content)
    try:
        recipients = [int(to) for to in c["recipients"]]
        if len(recipients) != len(frames):
            raise RemoteProtocolError(
                f"a reply names {len(recipients)} recipients for {len(frames)} frames"
            )
        return Reply(
            node=int(c["node"]),
            frames=list(zip(recipients, frames, strict=True)),
            timers=[
                (str(r), _int_or_none(s), int(w), _int_or_none(v)) for r, s, w, v in c["timers"]
            ],
            advert=c["advert"],
            receiver=c["receiver"],
            done=bool(c["done"]),
            reasons={str(k): str(v) for k, v in c["reasons"].items()},
            rejected={str(k): int(v) for k, v in c["rejected"].items()},
            refused={str(k): int(v) for k, v in c["refused"].items()},
            sampled=int(c["sampled"]),
            absent=c["absent"],
            void=[(str(r), _int_or_none(s), _int_or_none(v)) for r, s, v in c["void"]],
            release=(
                content.array_records[RELEASE]["values"].numpy().astype(np.uint8).tobytes()
                if RELEASE in content.array_records
                else None
            ),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RemoteProtocolError(f"a reply the relay cannot read: {exc}") from None


__all__ = ["reply_from_records", "reply_to_records", "request_from_records", "request_to_records"]
