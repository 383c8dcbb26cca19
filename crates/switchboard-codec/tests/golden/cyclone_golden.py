"""Golden CDR vectors from Cyclone DDS's Python binding (PyPI `cyclonedds`).

The classes below mirror golden.idl. IdlStruct.serialize()/deserialize() need no
network and no DDS participant.

    python cyclone_golden.py emit    -> JSON on stdout: [{type, json, enc: {name: hex}}]
    python cyclone_golden.py check   <- JSON lines on stdin {index, enc, hex}
                                     -> JSON on stdout: [{index, enc, ok, json|error}]
"""
import json
import math
import sys
from dataclasses import dataclass, fields
from typing import Optional

from cyclonedds.idl import IdlEnum, IdlStruct, IdlUnion
from cyclonedds.idl import annotations as annotate
from cyclonedds.idl import types
from cyclonedds.idl._support import Endianness

ENCODINGS = {
    "xcdr1_le": (False, Endianness.Little),
    "xcdr1_be": (False, Endianness.Big),
    "xcdr2_le": (True, Endianness.Little),
    "xcdr2_be": (True, Endianness.Big),
}


class Color(IdlEnum, typename="golden.Color"):
    RED = 0
    GREEN = 1
    BLUE = 2


@annotate.bit_bound(8)
class Small(IdlEnum, typename="golden.Small"):
    S0 = 0
    S1 = 1
    S2 = 2


@dataclass
@annotate.final
class Point(IdlStruct, typename="golden.Point"):
    x: types.float64
    y: types.float64


@dataclass
@annotate.final
class Prims(IdlStruct, typename="golden.Prims"):
    b: bool
    c: types.char
    o: types.byte
    i8: types.int8
    u8: types.uint8
    s: types.int16
    us: types.uint16
    l: types.int32
    ul: types.uint32
    ll: types.int64
    ull: types.uint64
    f: types.float32
    d: types.float64


class Shape(IdlUnion, discriminator=types.int32, typename="golden.Shape"):
    p: types.case[1, Point]
    r: types.case[[2, 3], types.float64]
    name: types.default[str]


class ByColor(IdlUnion, discriminator=Color, typename="golden.ByColor"):
    red: types.case[Color.RED, types.int32]
    green: types.case[Color.GREEN, str]


@annotate.appendable
class AShape(IdlUnion, discriminator=types.int16, typename="golden.AShape"):
    a: types.case[1, types.int32]
    b: types.case[2, str]


@dataclass
@annotate.final
class Collections(IdlStruct, typename="golden.Collections"):
    ints: types.sequence[types.int32]
    bounded: types.sequence[types.int32, 5]
    bytes: types.sequence[types.byte]
    strs: types.sequence[str]
    pts: types.sequence[Point]
    name: types.bounded_str[8]
    matrix: types.array[types.array[types.int32, 3], 2]
    pair: types.array[Point, 2]
    ds: types.sequence[types.float64]
    colors: types.sequence[Color]
    strarr: types.array[str, 2]
    lls: types.sequence[types.int64]
    raw: types.array[types.byte, 4]
    nested: types.sequence[types.sequence[types.int16]]


@dataclass
@annotate.final
class Final(IdlStruct, typename="golden.Final", keylist=["id"]):
    id: types.int32
    pos: Point
    color: Color
    shape: Shape
    prims: Prims


@dataclass
@annotate.appendable
class Appendable(IdlStruct, typename="golden.Appendable", keylist=["key"]):
    key: str
    big: types.int64
    maybe: Optional[types.float64]
    opt_pt: Optional[Point]
    pts: types.sequence[Point]
    ash: AShape
    small: Small


@dataclass
@annotate.mutable
class Mutable(IdlStruct, typename="golden.Mutable", keylist=["id"]):
    id: types.int32
    name: str
    annotate.member_id("name", 10)
    opt: Optional[types.int32]
    d: types.float64
    vals: types.sequence[types.float64]
    shorts: types.sequence[types.int16]
    bytes: types.sequence[types.byte]
    p: Point
    bc: ByColor
    small: Small
    ll: types.int64


@dataclass
@annotate.final
class WithOptional(IdlStruct, typename="golden.WithOptional"):
    a: types.int32
    b: Optional[types.int32]
    c: Optional[str]
    d: types.float64


@dataclass
@annotate.appendable
class Nested(IdlStruct, typename="golden.Nested", keylist=["id"]):
    id: types.int32
    f: Final
    a: Appendable
    m: Mutable
    ms: types.sequence[Mutable]


def prims(k):
    return Prims(b=k % 2 == 0, c="xyz"[k % 3], o=200 + k, i8=-100 - k, u8=250 - k, s=-30000 + k,
                 us=65000 + k, l=-2_000_000_000 + k, ul=4_000_000_000 + k,
                 ll=-(2**62) - k if k % 2 else 2**50 + k, ull=2**64 - 1 - k if k % 2 else 12345 + k,
                 f=1.5 * (k + 1), d=-0.1 * (k + 1))


def mutable(k):
    return Mutable(id=k, name=f"mut-{k}", opt=None if k % 2 else 7 * k, d=2.5 + k,
                   vals=[1.0 / (i + 1) for i in range(k + 1)], shorts=[-1, 2, -3][: k + 1],
                   bytes=[0, 255, k], p=Point(x=k, y=-k),
                   bc=ByColor(red=k) if k % 2 else ByColor(green="g" * k), small=Small.S2,
                   ll=2**60 + k)


def appendable(k):
    return Appendable(key=f"k{k}", big=-(2**53) - k if k else 2**53, maybe=None if k % 2 else 3.25,
                      opt_pt=Point(x=1.0, y=2.0) if k % 2 else None, pts=[Point(x=i, y=i * 2) for i in range(k)],
                      ash=AShape(a=-5) if k % 2 else AShape(b="hello"), small=Small.S1)


def final(k):
    shapes = [Shape(p=Point(x=1.0, y=-1.0)), Shape(r=0.5), Shape(discriminator=3, value=7.0), Shape(name="blob"),
              Shape(discriminator=42, value="other")]
    return Final(id=k, pos=Point(x=0.25 * k, y=1e300), color=[Color.RED, Color.GREEN, Color.BLUE][k % 3],
                 shape=shapes[k % len(shapes)], prims=prims(k))


def samples():
    out = []
    for k in range(5):
        out.append(final(k))
    for k in range(3):
        out.append(appendable(k))
    for k in range(3):
        out.append(mutable(k))
    out.append(Collections(ints=[], bounded=[1, 2, 3, 4, 5], bytes=[], strs=[], pts=[], name="",
                           matrix=[[1, 2, 3], [4, 5, 6]], pair=[Point(x=1, y=2), Point(x=3, y=4)], ds=[],
                           colors=[], strarr=["", ""], lls=[], raw=[0, 0, 0, 0], nested=[]))
    out.append(Collections(ints=[-1, 0, 1], bounded=[7], bytes=[1, 2, 3, 254, 255], strs=["a", "", "ünï"],
                           pts=[Point(x=0.5, y=-0.5)], name="eightchr", matrix=[[-1, -2, -3], [2**31 - 1, 0, -2**31]],
                           pair=[Point(x=-1, y=-2), Point(x=-3, y=-4)], ds=[1.25, -2.5, float("inf")],
                           colors=[Color.BLUE, Color.RED], strarr=["left", "right"], lls=[2**63 - 1, -2**63, 5],
                           raw=[9, 8, 7, 6], nested=[[1, 2], [], [3]]))
    out.append(WithOptional(a=1, b=None, c=None, d=1.0))
    out.append(WithOptional(a=2, b=-3, c="present", d=float("nan")))
    out.append(Nested(id=9, f=final(1), a=appendable(1), m=mutable(2), ms=[mutable(0), mutable(1)]))
    return out


def num(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, int):
        return v if abs(v) <= 2**53 else str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    return v


def union_json(u):
    cls = type(u)
    cases = cls.__idl_cases__
    default = cls.__idl_default__
    d, v = u.get()
    if d is None:
        d = cls.__idl_default_discriminator__
    name = getattr(u, "_IdlUnion__active", None)
    out = {}
    if d in cases:
        first = next(lbl for lbl, c in cases.items() if c[0] == cases[d][0])
        canonical = first
    elif default is not None:
        canonical = cls.__idl_default_discriminator__
    else:
        canonical = None
    if canonical is None or canonical != d:
        out["_d"] = to_json(d)
    if name is not None:
        out[name] = to_json(v)
    return out


def to_json(v):
    if isinstance(v, IdlStruct):
        return {f.name: to_json(getattr(v, f.name)) for f in fields(v)}
    if isinstance(v, IdlUnion):
        return union_json(v)
    if isinstance(v, IdlEnum):
        return v.name
    if isinstance(v, (bytes, bytearray)):
        return list(v)
    if isinstance(v, list):
        return [to_json(x) for x in v]
    if v is None:
        return None
    return num(v)


def type_name(obj):
    return type(obj).__idl_typename__.replace(".", "::")


def emit():
    out = []
    for s in samples():
        enc = {}
        for name, (v2, endian) in ENCODINGS.items():
            enc[name] = s.serialize(use_version_2=v2, endianness=endian).hex()
        default_v2 = type(s).__idl__.default_version == 2
        out.append({"type": type_name(s), "json": to_json(s), "enc": enc, "default_xcdr2": default_v2})
    json.dump(out, sys.stdout)


def check():
    ss = samples()
    results = []
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        s = ss[req["index"]]
        try:
            back = type(s).deserialize(bytes.fromhex(req["hex"]))
            results.append({"index": req["index"], "enc": req["enc"], "ok": True, "json": to_json(back)})
        except Exception as e:  # report, the Rust side fails the test
            results.append({"index": req["index"], "enc": req["enc"], "ok": False, "error": repr(e)})
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    {"emit": emit, "check": check}[sys.argv[1]]()
