"""The wire protocol, pure: codec, messages and streams (no processes).

Streams run over ``os.pipe()`` pairs in this process; every message a test
writes is small enough to fit in the pipe buffer, so reading it back in the
same thread can never block.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import random
import re
import struct
import time
from pathlib import Path

import msgpack
import pytest
from _values import same

import isolate
from isolate import protocol
import isolate.protocol.stream as stream_mod
from isolate.protocol import (
    MAX_FRAME_BYTES, PROTOCOL_VERSION, BigInt, ErrorValue, ExtDecoder, ExtType, HandleRef,
    HostFunctionRef, JSDate, JSMap, JSRegExp, JSSet, JSSymbol, JSTypedArray, MessageKind,
    MessageStream, Notification, ProtocolError, Request, Response, StreamClosed, Unhashable,
    UndefinedType, UnencodableValue, WireError, decode_value, encode_value, error_triple,
    finish_values, pack_message, undefined, unpack_message,
)
from isolate.protocol.codec import MAX_SAFE_INTEGER, MirroredAccessor

pytestmark = pytest.mark.timeout(30)

UTC = dt.timezone.utc
SPEC = Path(protocol.__file__).with_name("SPEC.md")


# -- helpers -------------------------------------------------------------------

def wire(value, **hooks):
    """encode_value -> msgpack bytes -> ExtDecoder -> decode_value."""
    data = msgpack.packb(encode_value(value), use_bin_type=True)
    decoder = ExtDecoder()
    return decode_value(decoder.unpack(data), **hooks)


def ext_of(value) -> msgpack.ExtType:
    out = encode_value(value)
    assert isinstance(out, msgpack.ExtType), out
    return out




@pytest.fixture
def pipe_stream():
    """A loopback MessageStream: what it writes, it reads back."""
    r, w = os.pipe()
    s = MessageStream(r, w)
    yield s
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def raw_pipe():
    """(stream reading the pipe, write fd for raw bytes)."""
    r, w = os.pipe()
    yield MessageStream(r, w), w
    for fd in (r, w):
        try:
            os.close(fd)
        except OSError:
            pass


# -- messages ------------------------------------------------------------------

class TestMessages:
    def test_wire_shapes_are_msgpack_rpc(self):
        assert msgpack.unpackb(pack_message(Request(7, "run", [0, 1, "1+1", {}]))) == [0, 7, "run", [0, 1, "1+1", {}]]
        assert msgpack.unpackb(pack_message(Response(7, None, 2))) == [1, 7, None, 2]
        assert msgpack.unpackb(pack_message(Response(7, ["UNKNOWN_METHOD", "m", None], None))) == \
            [1, 7, ["UNKNOWN_METHOD", "m", None], None]
        assert msgpack.unpackb(pack_message(Notification("release", [1, [2, 3]]))) == [2, "release", [1, [2, 3]]]
        assert [MessageKind.REQUEST, MessageKind.RESPONSE, MessageKind.NOTIFICATION] == [0, 1, 2]

    def test_pack_message_rejects_non_messages(self):
        with pytest.raises(TypeError):
            pack_message([0, 1, "x", []])

    @pytest.mark.parametrize("message", [
        Request(0, "hello", [PROTOCOL_VERSION]),
        Request(2**32 - 1, "run", [0, 1, "code", {"filename": "a.js", "timeout": 100}]),
        Response(1, None, [42, None]),
        Response(3, None, None),
        Response(4, error_triple(WireError.SCRIPT_TIMEOUT, "timed out", 50), None),
        Notification("release", [1, [5, 6]]),
        Notification("release_context", [1]),
    ], ids=lambda m: type(m).__name__)
    def test_round_trip_through_stream(self, pipe_stream, message):
        pipe_stream.write(message)
        got = pipe_stream.read()
        assert got == message
        assert got.needs_finish is False

    def test_values_in_messages_need_finishing(self, pipe_stream):
        cyclic = [1]
        cyclic.append(cyclic)
        params = [0, 1, 7, encode_value([JSMap({1: 2}), cyclic])]
        pipe_stream.write(Request(9, "call_host", params))
        pipe_stream.write(Request(10, "stats", [0]))
        first = pipe_stream.read()
        assert first.needs_finish is True
        args = finish_values(first.params, first.needs_finish)[3]
        assert args[0] == JSMap({1: 2}) and isinstance(args[0], JSMap)
        assert args[1][1] is args[1]
        second = pipe_stream.read()  # the flag is per message
        assert second.needs_finish is False
        assert second == Request(10, "stats", [0])

    def test_error_response_data_is_a_value(self, pipe_stream):
        thrown = ErrorValue("TypeError", "bad", "TypeError: bad\n    at a.js:1:1", {"code": "E"})
        pipe_stream.write(Response(3, error_triple(WireError.JS_EXCEPTION, "bad",
                                                   encode_value([thrown, None])), None))
        got = pipe_stream.read()
        code, message, data = got.error
        assert (code, message) == ("JS_EXCEPTION", "bad")
        value, globals_ = finish_values(data, got.needs_finish)
        assert same(value, thrown) and globals_ is None

    def test_back_to_back_messages_in_one_write(self, raw_pipe):
        s, w = raw_pipe
        msgs = [Request(i, "stats", [0]) for i in range(1, 20)] + [Notification("release_context", [3])]
        os.write(w, b"".join(pack_message(m) for m in msgs))
        assert [s.read() for _ in msgs] == msgs

    def test_message_split_across_reads(self, raw_pipe, monkeypatch):
        monkeypatch.setattr(stream_mod, "_READ_CHUNK", 1)  # the reader sees one byte at a time
        s, w = raw_pipe
        message = Request(5, "run", [0, 1, "x" * 300, {"filename": "f.js"}])
        os.write(w, pack_message(message) + pack_message(Response(5, None, 1)))
        assert s.read() == message
        assert s.read() == Response(5, None, 1)

    def test_write_bytes_loops_over_partial_writes(self, pipe_stream, monkeypatch):
        real_write = os.write
        monkeypatch.setattr(stream_mod.os, "write", lambda fd, data: real_write(fd, bytes(data[:3])))
        pipe_stream.write(Request(1, "run", [0, 1, "a long enough piece of code", {}]))
        monkeypatch.undo()
        assert pipe_stream.read() == Request(1, "run", [0, 1, "a long enough piece of code", {}])

    def test_end_of_stream(self, raw_pipe):
        s, w = raw_pipe
        os.write(w, pack_message(Notification("release_context", [1])))
        os.close(w)
        assert s.read() == Notification("release_context", [1])
        with pytest.raises(StreamClosed):
            s.read()
        assert issubclass(StreamClosed, EOFError)

    def test_end_of_stream_mid_message(self, raw_pipe):
        s, w = raw_pipe
        os.write(w, pack_message(Request(1, "run", [0, 1, "code", {}]))[:-2])
        os.close(w)
        with pytest.raises(StreamClosed):
            s.read()


class TestMalformedMessages:
    @pytest.mark.parametrize("doc", [
        5, "x", None, {}, [], {"0": 1},
        [3, 1, "m", []],                 # unknown kind
        [0, 1, "m"],                     # request too short
        [0, 1, "m", [], 5],              # request too long
        [0, "1", "m", []],               # msgid not an int
        [0, 1.5, "m", []],
        [0, 1, 7, []],                   # method not a str
        [0, 1, "m", {}],                 # params not an array
        [0, 1, "m", None],
        [1, 1, "error", None],           # error neither nil nor an array
        [1, "1", None, 2],
        [1, 1, None],                    # response too short
        [2, "m"],                        # notification too short
        [2, 5, []],
        [2, "m", "params"],
        [2, "m", [], 1],
    ])
    def test_unpack_message_rejects(self, doc):
        with pytest.raises(ProtocolError):
            unpack_message(doc, ExtDecoder())

    @pytest.mark.parametrize("doc", [5, [0, 1, "m"], [2, "m", None], [9]])
    def test_stream_rejects_bad_shapes(self, raw_pipe, doc):
        s, w = raw_pipe
        os.write(w, msgpack.packb(doc))
        with pytest.raises(ProtocolError):
            s.read()

    @pytest.mark.parametrize("data", [
        b"\xc1",                      # never-used byte
        b"\xd4\x63\x00",              # fixext1 with unknown ext code 99
        b"\x92\xa3abc\xa2\xff\xfe",   # str that is not UTF-8
    ], ids=["reserved-byte", "unknown-ext", "bad-utf8"])
    def test_stream_rejects_undecodable_bytes(self, raw_pipe, data):
        s, w = raw_pipe
        os.write(w, data)
        with pytest.raises(ProtocolError):
            s.read()
        assert issubclass(ProtocolError, ValueError)

    def test_unknown_ext_code_in_a_value(self, raw_pipe):
        s, w = raw_pipe
        os.write(w, msgpack.packb([2, "release", [1, msgpack.ExtType(99, b"")]]))
        with pytest.raises(ProtocolError, match="99"):
            s.read()

    def test_ext_decoder_unknown_code(self):
        with pytest.raises(ValueError, match="unknown value ext type 42"):
            ExtDecoder()(42, b"")

    @pytest.mark.parametrize("code,payload", [
        (ExtType.BIGINT, b""),
        (ExtType.SURROGATE_STRING, b"\xff"),
        (ExtType.REF, b"\xc1"),
    ], ids=lambda x: getattr(x, "name", None) or repr(x))
    def test_stream_rejects_bad_ext_payloads(self, raw_pipe, code, payload):
        s, w = raw_pipe
        os.write(w, msgpack.packb([2, "m", [msgpack.ExtType(code, payload)]]))
        with pytest.raises(ProtocolError):
            s.read()

    @pytest.mark.parametrize("code,payload", [
        (ExtType.DATE, b"abc"),
        (ExtType.SYMBOL, msgpack.packb(5)),
        (ExtType.REGEXP, msgpack.packb(None)),
        (ExtType.TYPED_ARRAY, msgpack.packb(["Uint8Array"])),
        (ExtType.ERROR, msgpack.packb(["Error"])),
        (ExtType.HANDLE, msgpack.packb([])),
    ], ids=lambda x: getattr(x, "name", None) or repr(x))
    def test_stream_rejects_malformed_ext_payloads(self, raw_pipe, code, payload):
        s, w = raw_pipe
        os.write(w, msgpack.packb([2, "m", [msgpack.ExtType(code, payload)]]))
        with pytest.raises(ProtocolError):
            s.read()

    def test_bad_back_references_are_value_errors(self):
        decoder = ExtDecoder()
        past_end = decoder.unpack(msgpack.packb([msgpack.ExtType(ExtType.GRAPH, b""),
                                                 [msgpack.ExtType(ExtType.REF, msgpack.packb(5))]]))
        with pytest.raises(ProtocolError, match="REF.5. outside the 1 containers"):
            decode_value(past_end)
        outside_graph = decoder.unpack(msgpack.packb([[], msgpack.ExtType(ExtType.REF, msgpack.packb(0))]))
        with pytest.raises(ProtocolError, match="outside any GRAPH"):
            decode_value(outside_graph)


class TestFrameLimit:
    def test_default_limit(self):
        assert MAX_FRAME_BYTES == 256 * 1024 * 1024

    def test_oversized_frame_is_refused(self, monkeypatch):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 1024)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            small = Request(1, "run", [0, 1, "x" * 100, {}])
            s.write(small)
            assert s.read() == small
            s.write(Request(2, "run", [0, 1, "x" * 4096, {}]))
            with pytest.raises(ProtocolError, match="larger than 1024"):
                s.read()
        finally:
            os.close(r)
            os.close(w)

    def test_oversized_frame_arriving_in_pieces(self, monkeypatch):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 1024)
        monkeypatch.setattr(stream_mod, "_READ_CHUNK", 100)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            os.write(w, pack_message(Notification("m", [b"\0" * 5000])))
            with pytest.raises(ProtocolError):
                s.read()
        finally:
            os.close(r)
            os.close(w)

    def test_frame_over_the_limit_is_refused_even_when_it_fits_one_read(self, monkeypatch):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 200)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            small = Notification("m", ["a" * 100])
            os.write(w, pack_message(small) + pack_message(Notification("m", ["b" * 300])))
            assert s.read() == small
            with pytest.raises(ProtocolError, match="larger than 200"):
                s.read()
        finally:
            os.close(r)
            os.close(w)

    def test_many_frames_under_the_limit_in_one_read_are_all_read(self, monkeypatch):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 200)
        monkeypatch.setattr(stream_mod, "_READ_CHUNK", 4096)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            messages = [Notification("m", [str(i) * 150]) for i in range(10)]
            os.write(w, b"".join(pack_message(m) for m in messages))  # 1.6 KB: 8 frame limits
            assert [s.read() for _ in messages] == messages
        finally:
            os.close(r)
            os.close(w)

    def test_limit_is_per_frame(self, monkeypatch):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 200)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            message = Notification("m", ["a" * 150])
            data = pack_message(message)
            assert len(data) < 200
            os.write(w, data + data)
            assert s.read() == message
            assert s.read() == message
        finally:
            os.close(r)
            os.close(w)


# -- values: plain msgpack -----------------------------------------------------

class TestPlainValues:
    @pytest.mark.parametrize("value", [
        None, True, False, 0, 1, -1, MAX_SAFE_INTEGER, -MAX_SAFE_INTEGER, 1.5, "", "héllo ✓ 😀",
        b"\x00\xffbytes", [], {}, [1, [2, [3]]], {"a": {"b": [None, "c"]}},
    ], ids=repr)
    def test_plain_round_trip(self, value):
        assert not isinstance(encode_value(value), msgpack.ExtType)
        assert same(wire(value), value)

    def test_plain_values_need_no_finishing(self):
        decoder = ExtDecoder()
        decoder.unpack(msgpack.packb(encode_value({"a": [1, "x", None]}), use_bin_type=True))
        assert decoder.needs_finish is False

    def test_bytes_like_become_bin(self):
        for v in (bytearray(b"ab"), memoryview(b"ab")):
            assert encode_value(v) == b"ab"
            assert wire(v) == b"ab"

    def test_tuples_become_lists(self):
        assert wire((1, (2, 3))) == [1, [2, 3]]

    @pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308])
    def test_special_floats(self, value):
        assert encode_value(value) is value or same(encode_value(value), value)
        assert same(wire(value), value)
        assert same(wire([value]), [value])

    def test_unsafe_integers_become_numbers(self):
        got = wire(2**60 + 1)
        assert type(got) is float and got == float(2**60)
        assert type(wire(MAX_SAFE_INTEGER + 1)) is float
        assert wire(-(2**70)) == -float(2**70)

    def test_integer_beyond_float_range(self):
        with pytest.raises(UnencodableValue, match="BigInt"):
            encode_value(10**400)

    def test_int_and_float_subclasses(self):
        import enum

        class Color(enum.IntEnum):
            RED = 3

        assert wire(Color.RED) == 3 and type(wire(Color.RED)) is int

        class Meters(float):
            pass

        assert wire(Meters(2.5)) == 2.5

    def test_str_subclass(self):
        class Name(str):
            pass

        assert wire(Name("x")) == "x"

    def test_numeric_object_keys_become_strings(self):
        assert wire({1: "a", 2.5: "b", 3.0: "c", -0.0: "d"}) == {"1": "a", "2.5": "b", "3": "c", "0": "d"}

    def test_numeric_object_keys_follow_js(self):
        got = wire({math.nan: 1, math.inf: 2, -math.inf: 3, 1e21: 4, 1e-7: 5})
        assert got == {"NaN": 1, "Infinity": 2, "-Infinity": 3, "1e+21": 4, "1e-7": 5}

    @pytest.mark.parametrize("key", [None, True, (1, 2), b"k"], ids=repr)
    def test_other_object_keys_are_unencodable(self, key):
        with pytest.raises(UnencodableValue):
            encode_value({key: 1})

    @pytest.mark.parametrize("value", [object(), complex(1, 2), lambda: 1, dt.date(2020, 1, 1), Ellipsis],
                             ids=lambda v: type(v).__name__)
    def test_unencodable(self, value):
        with pytest.raises(UnencodableValue):
            encode_value(value)
        assert issubclass(UnencodableValue, TypeError)


# -- values: ext types ---------------------------------------------------------

class TestExtTypes:
    def test_codes(self):
        assert {e.name: e.value for e in ExtType} == {
            "UNDEFINED": 1, "BIGINT": 2, "DATE": 3, "REGEXP": 4, "MAP": 5, "SET": 6, "TYPED_ARRAY": 7,
            "ERROR": 8, "SYMBOL": 9, "HANDLE": 10, "HOST_FUNCTION": 11, "REF": 12, "GRAPH": 13,
            "SURROGATE_STRING": 14, "ACCESSOR": 15, "JSON_FOR_JS": 16, "JSON_FROM_JS": 17,
        }

    # Payload layouts exactly as SPEC.md section 9 gives them.
    @pytest.mark.parametrize("value,code,payload", [
        (undefined, 1, b""),
        (BigInt(-123), 2, b"\x85"),
        (BigInt(0), 2, b"\x00"),
        (BigInt(255), 2, b"\x00\xff"),
        (BigInt(-256), 2, b"\xff\x00"),
        (dt.datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), 3, struct.pack(">d", 1000.0)),
        (JSDate(math.nan), 3, struct.pack(">d", math.nan)),
        (JSRegExp("a+b", "gi"), 4, msgpack.packb(["a+b", "gi"])),
        (JSTypedArray("Uint8Array", b"\x01\x02"), 7, msgpack.packb(["Uint8Array", b"\x01\x02"], use_bin_type=True)),
        (JSSymbol("s"), 9, msgpack.packb(["s", False])),
        (JSSymbol(None), 9, msgpack.packb([None, False])),
        (JSSymbol("app.key", registered=True), 9, msgpack.packb(["app.key", True])),
        (HandleRef("function", 3, "Function", "f"), 10, msgpack.packb(["function", 3, "Function", "f"])),
        (HostFunctionRef(9, "greet"), 11, msgpack.packb([9, "greet"])),
        ("a\ud800b", 14, b"a\xed\xa0\x80b"),
        (MirroredAccessor(True, False), 15, msgpack.packb([True, False])),
    ], ids=lambda x: repr(x)[:30])
    def test_payload_layout(self, value, code, payload):
        out = ext_of(value)
        assert out.code == code
        if code == 3 and math.isnan(struct.unpack(">d", payload)[0]):
            assert math.isnan(struct.unpack(">d", out.data)[0])
        else:
            assert out.data == payload

    @pytest.mark.parametrize("value", [
        undefined,
        BigInt(0), BigInt(1), BigInt(-1), BigInt(2**64), BigInt(-(2**200) + 7), BigInt(10**300),
        JSRegExp("^a.*b$", "gimsuy"), JSRegExp("", ""),
        JSTypedArray("Float64Array", struct.pack("<2d", 1.5, -2.0)),
        JSTypedArray("DataView", b"\x00\x01\x02"),
        JSTypedArray("BigInt64Array", struct.pack("<q", -5)),
        JSSymbol("desc"), JSSymbol(None), JSSymbol("reg", True),
        HandleRef("object", 12, "Foo", ""), HandleRef("promise", 1, "Promise", ""),
        HostFunctionRef(4, "cb"),
        JSMap(), JSMap({"a": 1, 1: "one", None: undefined, BigInt(5): [1, 2]}),
        JSSet(), JSSet({1, "a", None}), {1, 2, 3}, frozenset({"x"}),
    ], ids=lambda v: repr(v)[:40])
    def test_round_trip(self, value):
        got = wire(value)
        assert same(got, JSSet(value) if type(value) in (set, frozenset) else value)

    def test_undefined_is_a_falsy_singleton(self):
        assert wire(undefined) is undefined
        assert UndefinedType() is undefined and not undefined and repr(undefined) == "undefined"
        assert wire([undefined, None]) == [undefined, None]

    def test_bigint_stays_bigint(self):
        got = wire(BigInt(2**100))
        assert type(got) is BigInt and got == 2**100
        assert repr(got) == f"BigInt({2**100})"
        assert type(wire({"n": BigInt(-3)})["n"]) is BigInt

    def test_typed_array_tolist(self):
        assert JSTypedArray("Float64Array", struct.pack("<2d", 1.5, -2.0)).tolist() == [1.5, -2.0]
        assert JSTypedArray("Int16Array", struct.pack("<3h", 1, -2, 3)).tolist() == [1, -2, 3]
        big = JSTypedArray("BigUint64Array", struct.pack("<Q", 2**64 - 1)).tolist()
        assert big == [2**64 - 1] and type(big[0]) is BigInt

    def test_error_round_trip(self):
        err = ErrorValue("RangeError", "out of range", "RangeError: out of range\n    at x.js:1:1",
                         {"code": "ERR_X", "extra": [1, {"y": undefined}]})
        got = wire(err)
        assert isinstance(got, ErrorValue) and same(got, err)

    def test_error_hooks(self):
        class Boom(Exception):
            def _set_props(self, props):
                self.props = props

        got = wire([ErrorValue("Error", "m", "", {"k": 1})], make_error=lambda e: Boom(e.message))
        assert isinstance(got[0], Boom) and got[0].args == ("m",) and got[0].props == {"k": 1}

    def test_handle_and_host_function_hooks(self):
        got = wire([HandleRef("function", 1, "Function", "f"), HostFunctionRef(2, "g")],
                   make_handle=lambda h: ("handle", h.handle_id),
                   make_host_function=lambda f: ("host", f.function_id))
        assert got == [("handle", 1), ("host", 2)]

    def test_to_ref_hook(self):
        class Thing:
            pass

        thing = Thing()
        out = encode_value([thing], to_ref=lambda o: HandleRef("object", 5, "Thing") if o is thing else None)
        assert wire_doc(out) == [HandleRef("object", 5, "Thing")]
        with pytest.raises(UnencodableValue):
            encode_value([Thing()], to_ref=lambda o: None)


def wire_doc(encoded):
    decoder = ExtDecoder()
    return decode_value(decoder.unpack(msgpack.packb(encoded, use_bin_type=True)))


class TestDates:
    @pytest.mark.parametrize("value", [
        dt.datetime(1970, 1, 1, tzinfo=UTC),
        dt.datetime(2024, 2, 29, 12, 30, 45, 123000, tzinfo=UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
        dt.datetime(1, 1, 1, tzinfo=UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999000, tzinfo=UTC),
    ], ids=str)
    def test_round_trip(self, value):
        got = wire(value)
        assert got == value and got.tzinfo == UTC

    def test_other_timezones_keep_the_instant(self):
        tz = dt.timezone(dt.timedelta(hours=-5, minutes=-30))
        value = dt.datetime(2020, 6, 1, 8, 0, tzinfo=tz)
        got = wire(value)
        assert got == value and got.utcoffset() == dt.timedelta(0)

    def test_floor_to_milliseconds(self):
        assert wire(dt.datetime(2020, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == dt.datetime(2020, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
        before_epoch = dt.datetime(1969, 12, 31, 23, 59, 59, 999500, tzinfo=UTC)
        assert wire(before_epoch) == dt.datetime(1969, 12, 31, 23, 59, 59, 999000, tzinfo=UTC)

    def test_naive_datetime_is_unencodable(self):
        with pytest.raises(UnencodableValue, match="naive"):
            encode_value(dt.datetime(2020, 1, 1))
        with pytest.raises(UnencodableValue):
            encode_value({"when": [dt.datetime.now()]})

    def test_invalid_date(self):
        got = wire(JSDate(math.nan))
        assert isinstance(got, JSDate) and not got.valid and math.isnan(got.ms)

    @pytest.mark.parametrize("ms", [8.64e15, -8.64e15, -62135596800001.0, 253402300800000.0])
    def test_dates_python_cannot_hold(self, ms):
        got = wire(JSDate(ms))
        assert isinstance(got, JSDate) and got.valid and got.ms == ms

    def test_jsdate_in_range_decodes_to_datetime(self):
        assert wire(JSDate(0.0)) == dt.datetime(1970, 1, 1, tzinfo=UTC)


class TestStrings:
    @pytest.mark.parametrize("s", ["\ud800", "\udfff", "a\ud83db", "x\udc00\ud800y", "\ud83d\ude00"], ids=ascii)
    def test_lone_surrogates(self, s):
        out = encode_value(s)
        assert isinstance(out, msgpack.ExtType) and out.code == ExtType.SURROGATE_STRING
        assert out.data == s.encode("utf-8", "surrogatepass")
        assert wire(s) == s

    def test_valid_strings_are_plain(self):
        assert encode_value("😀 ok") == "😀 ok"

    def test_surrogates_in_containers_and_keys(self):
        value = {"k\ud800": ["\udfff", JSMap({"\ud801": "v\udc01"})], "ok": JSSet({"\ud802"})}
        got = wire(value)
        assert same(got, value)

    @pytest.mark.parametrize("value", [
        ErrorValue("Error", "bad \ud800", "Error: bad \ud800"),
        JSRegExp("\ud800", ""),
        JSSymbol("\udfff"),
        HandleRef("function", 1, "Function", "f\ud800"),
    ], ids=lambda v: type(v).__name__)
    def test_lone_surrogates_inside_ext_payloads(self, value):
        assert same(wire(value), value)


# -- shared references and cycles ------------------------------------------------

class TestGraphs:
    def test_spec_example(self):
        a = []
        a.append(a)
        out = encode_value([a, a])
        ref1 = msgpack.ExtType(ExtType.REF, msgpack.packb(1))
        assert out == [msgpack.ExtType(ExtType.GRAPH, b""), [[ref1], ref1]]

    def test_no_graph_without_sharing(self):
        out = encode_value([[1], [1], {"a": [2]}])
        assert out == [[1], [1], {"a": [2]}]

    def test_self_cycle(self):
        a = [1]
        a.append(a)
        got = wire(a)
        assert got[0] == 1 and got[1] is got

    def test_dict_cycle(self):
        d = {"name": "root"}
        d["self"] = d
        d["kids"] = [{"parent": d}]
        got = wire(d)
        assert got["self"] is got and got["kids"][0]["parent"] is got

    def test_shared_reference_keeps_identity(self):
        shared = {"x": 1}
        value = {"a": shared, "b": [shared, shared]}
        got = wire(value)
        assert got["a"] is got["b"][0] is got["b"][1]
        assert got["a"] == {"x": 1}

    def test_shared_tuple(self):
        t = (1, 2)
        got = wire([t, t])
        assert got == [[1, 2], [1, 2]] and got[0] is got[1]

    def test_pre_order_numbering(self):
        # Numbers: 0 root list, 1 JSMap, 2 its key list, 3 value dict, 4 set, 5 error, 6 error props list.
        inner = [0]
        m = JSMap({Unhashable(inner): {"v": 1}})
        s = JSSet({1})
        e = ErrorValue("Error", "e", "", {"p": [1]})
        value = [m, s, e, inner, e.props["p"], s, m]
        out = encode_value(value)
        assert out[0] == msgpack.ExtType(ExtType.GRAPH, b"")
        root = out[1]
        refs = [msgpack.unpackb(x.data) for x in root[3:]]
        assert refs == [2, 6, 4, 1]
        got = wire(value)
        assert got[4] is got[2].props["p"] and got[5] is got[1] and got[6] is got[0]

    def test_map_key_numbered_before_value(self):
        key = [1]
        value = [JSMap({Unhashable(key): [2]}), key]
        got = wire(value)
        assert got[1] == [1]
        assert got[1] is next(iter(got[0])).value

    def test_map_with_itself_as_key_and_value(self):
        m = JSMap()
        m[Unhashable(m)] = m
        m["plain"] = [m]
        got = wire(m)
        key = next(k for k in got if isinstance(k, Unhashable))
        assert key.value is got and got[key] is got and got["plain"][0] is got

    def test_set_containing_shared_list(self):
        lst = [1, 2]
        s = JSSet({Unhashable(lst), "x"})
        got = wire({"set": s, "list": lst})
        member = next(i for i in got["set"] if isinstance(i, Unhashable))
        assert member.value is got["list"] and "x" in got["set"]

    def test_error_cycle_through_props(self):
        e = ErrorValue("Error", "cyclic", "Error: cyclic")
        e.props = {"self": e, "list": [e]}
        got = wire(e)
        assert got.props["self"] is got and got.props["list"][0] is got

    def test_error_cycle_with_make_error(self):
        class JSErr(Exception):
            def _set_props(self, props):
                self.props = props

        e = ErrorValue("Error", "c", "")
        e.props = {"self": e}
        got = wire([e, e], make_error=lambda ev: JSErr(ev.message))
        assert got[0] is got[1] and got[0].props["self"] is got[0]

    def test_graphs_nested_in_params_number_independently(self):
        a = [1]
        a.append(a)
        b = {"k": None}
        b["k"] = b
        params = [0, [["noise"], {"more": [1]}], encode_value(a), {"opts": encode_value(b)}]
        got = wire_doc(params)
        assert got[2][1] is got[2]
        assert got[3]["opts"]["k"] is got[3]["opts"]

    def test_deep_nesting(self):
        value = cur = []
        for _ in range(200):
            nxt = []
            cur.append(nxt)
            cur = nxt
        cur.append(value)  # a cycle 200 levels down
        got = wire(value)
        node = got
        for _ in range(200):
            node = node[0]
        assert node[0] is got

    def test_random_graphs(self):
        rng = random.Random(1234)
        atoms = [None, True, 0, -7, 2.5, math.nan, -0.0, "s", "\ud800", b"b", undefined, BigInt(2**70),
                 JSRegExp("x", "g"), JSSymbol("y"), dt.datetime(2000, 1, 1, tzinfo=UTC)]
        for _ in range(150):
            pool = []

            def make(depth):
                roll = rng.random()
                if pool and roll < 0.15:
                    return rng.choice(pool)
                if depth > 4 or roll < 0.4:
                    return rng.choice(atoms)
                kind = rng.choice(["list", "dict", "map", "set", "error"])
                if kind == "list":
                    c = []
                    pool.append(c)
                    c.extend(make(depth + 1) for _ in range(rng.randrange(4)))
                elif kind == "dict":
                    c = {}
                    pool.append(c)
                    for i in range(rng.randrange(4)):
                        c[f"k{i}"] = make(depth + 1)
                elif kind == "map":
                    c = JSMap()
                    pool.append(c)
                    for i in range(rng.randrange(3)):
                        c[i] = make(depth + 1)
                elif kind == "set":
                    c = JSSet({rng.randrange(5) for _ in range(rng.randrange(3))})
                    pool.append(c)
                else:
                    c = ErrorValue("Error", "m", "")
                    pool.append(c)
                    c.props = {"p": make(depth + 1)}
                return c

            value = make(0)
            assert same(wire(value), value)
            assert same(wire_doc(encode_value(value)), value)


# -- errors and the spec ---------------------------------------------------------

class TestErrorsAndSpec:
    def test_error_triple(self):
        assert error_triple(WireError.SCRIPT_TIMEOUT, "t", 50) == ["SCRIPT_TIMEOUT", "t", 50]
        assert error_triple(WireError.INTERNAL, "x") == ["INTERNAL", "x", None]
        assert all(code.value == code.name for code in WireError)

    def test_spec_documents_every_error_code(self):
        text = SPEC.read_text()
        for code in WireError:
            assert re.search(rf"^\| `{code.value}` \|", text, re.M), code

    def test_spec_documents_every_ext_type(self):
        text = SPEC.read_text()
        for ext in ExtType:
            assert re.search(rf"^\| {ext.value} \| `{ext.name}` \|", text, re.M), ext

    def test_spec_documents_every_method(self):
        from isolate.workers.worker import Worker

        text = SPEC.read_text()
        methods = [name[4:] for name in vars(Worker) if name.startswith("_on_")]
        assert methods
        for method in methods:
            assert f"`{method}`" in text or f"### {method}" in text, method
        assert "call_host" in text and f"PROTOCOL_VERSION = {PROTOCOL_VERSION}" in text

    def test_spec_documents_every_bridge_tag(self):
        text = SPEC.read_text()
        for tag in "u n b y d r R O m S A t e h H".split():
            assert re.search(rf"^\| `{tag}` \|", text, re.M), tag

    def test_spec_frame_limit(self):
        assert "256 MiB" in SPEC.read_text() and MAX_FRAME_BYTES == 256 * 2**20


# -- protocol 2: containers as marked arrays, bounded depth, BigInt bytes ---------------

MAP_MARK = msgpack.ExtType(ExtType.MAP, b"")
SET_MARK = msgpack.ExtType(ExtType.SET, b"")
ERROR_MARK = msgpack.ExtType(ExtType.ERROR, b"")
GRAPH_MARK = msgpack.ExtType(ExtType.GRAPH, b"")


def ref(n):
    return msgpack.ExtType(ExtType.REF, msgpack.packb(n))


def nest(kind, depth, leaf=1):
    """A value ``depth`` containers deep: each container holds the next one (under key "k")."""
    v = leaf
    for _ in range(depth):
        if kind == "list":
            v = [v]
        elif kind == "dict":
            v = {"k": v}
        elif kind == "map":
            v = JSMap({"k": v})
        elif kind == "set":
            v = JSSet({Unhashable(v) if isinstance(v, (list, dict, set)) else v})
        else:
            v = ErrorValue("Error", "e", "Error: e", {"cause": v})
    return v


def depth_of(v):
    """How many containers deep ``nest`` went (iteratively: Python's repr/== would recurse)."""
    d = 0
    while True:
        if isinstance(v, list):
            v = v[0]
        elif isinstance(v, JSSet):
            (v,) = v
            v = v.value if isinstance(v, Unhashable) else v
        elif isinstance(v, dict):
            v = v["k"]
        elif isinstance(v, ErrorValue):
            v = v.props["cause"]
        else:
            return d, v
        d += 1


KINDS = ["list", "dict", "map", "set", "error"]


class TestContainerLayout:
    def test_map_set_error_are_marked_arrays(self):
        assert encode_value(JSMap({"k": 1, 2: "v"})) == [MAP_MARK, "k", 1, 2, "v"]
        assert encode_value(JSSet([7])) == [SET_MARK, 7]
        assert encode_value(ErrorValue("TypeError", "m", "TypeError: m", {"code": 1, "x": [2]})) == \
            [ERROR_MARK, "TypeError", "m", "TypeError: m", "code", 1, "x", [2]]
        assert encode_value(JSMap({Unhashable([1]): JSSet()})) == [MAP_MARK, [1], [SET_MARK]]

    def test_error_fields_with_lone_surrogates_use_surrogate_string(self):
        out = encode_value(ErrorValue("E\ud800", "m", ""))
        assert out[1] == msgpack.ExtType(ExtType.SURROGATE_STRING, "E\ud800".encode("utf-8", "surrogatepass"))
        assert wire(ErrorValue("E\ud800", "m", "")).name == "E\ud800"

    def test_graph_is_a_marked_pair_and_not_a_container(self):
        m = JSMap()
        m["self"] = m
        assert encode_value(m) == [GRAPH_MARK, [MAP_MARK, "self", ref(0)]]
        got = wire(m)
        assert got["self"] is got

    def test_a_leaf_ext_first_in_an_array_is_just_an_item(self):
        assert wire([undefined, BigInt(3), JSSymbol("s")]) == [undefined, BigInt(3), JSSymbol("s")]

    def test_markers_decode_without_nested_unpacking(self):
        decoder = ExtDecoder()
        raw = decoder.unpack(msgpack.packb([MAP_MARK, "k", [SET_MARK, 1]], use_bin_type=True))
        assert decoder.needs_finish and isinstance(raw, list)
        assert decode_value(raw) == JSMap({"k": JSSet({1})})

    def test_peek_through_a_graph(self):
        a = [1]
        a.append(a)
        decoder = ExtDecoder()
        raw = decoder.unpack(msgpack.packb(encode_value([7, a])))
        assert protocol.codec.peek(raw, 0) == 7
        with pytest.raises(ProtocolError):
            protocol.codec.peek(decoder.unpack(msgpack.packb([MAP_MARK, 1, 2])), 0)
        with pytest.raises(ProtocolError):
            protocol.codec.peek([], 0)


class TestBigIntBytes:
    @pytest.mark.parametrize("n", [0, 1, -1, 127, 128, -128, -129, 255, 256, 2**63, -(2**63), 2**64 - 1,
                                   2**20000 + 12345, -(2**20000) - 12345, -(2**19999)],
                             ids=lambda n: f"{n.bit_length()}bits" + ("-neg" if n < 0 else ""))
    def test_round_trip(self, n):
        out = encode_value(BigInt(n))
        assert out.code == ExtType.BIGINT
        assert int.from_bytes(out.data, "big", signed=True) == n
        got = wire(BigInt(n))
        assert type(got) is BigInt and got == n

    def test_twenty_thousand_bits_fast_and_without_the_digit_limit(self):
        import sys
        limit = sys.get_int_max_str_digits()
        n = -(2**20000 + 7)
        start = time.perf_counter()
        for _ in range(100):
            assert wire([BigInt(n)])[0] == n
        assert time.perf_counter() - start < 2
        assert sys.get_int_max_str_digits() == limit  # nothing raised the process-global limit
        assert repr(BigInt(n)).startswith("BigInt(-3980276840337966592354")

    def test_decimal_form(self):
        from isolate.protocol.values import bigint_decimal

        assert bigint_decimal(BigInt(-42)) == "-42"
        n = 2**20000
        digits = bigint_decimal(n)
        assert len(digits) == 6021 and digits.startswith("3980276840") and digits.endswith("9376")

    def test_tagged_hex_both_ways(self):
        from isolate.workers.tagged import from_tagged, to_tagged

        n = -(2**20000) + 3
        tagged, flag = to_tagged([BigInt(n), BigInt(255)])
        assert flag and tagged[1] == {"\0": "b", "v": "ff"} and tagged[0]["v"].startswith("-")
        back = from_tagged(json_round(tagged), True)
        assert back == [n, 255] and all(type(x) is BigInt for x in back)


def json_round(x):
    import json

    return json.loads(json.dumps(x))


class TestAccessors:
    def test_value_type(self):
        a = protocol.JSAccessor(get=True, set=False)
        assert repr(a) == "JSAccessor(get=True, set=False)"
        assert a == protocol.JSAccessor(True, False) and hash(a) == hash(protocol.JSAccessor(True, False))
        with pytest.raises(Exception):
            a.get = False

    def test_refused_host_to_js(self):
        with pytest.raises(UnencodableValue, match="marker from a context's mirror"):
            encode_value({"x": [protocol.JSAccessor(True, True)]})

    def test_worker_side_accessor_goes_on_the_wire(self):
        got = wire({"x": MirroredAccessor(False, True)})
        assert got == {"x": protocol.JSAccessor(False, True)} and type(got["x"]) is protocol.JSAccessor
        with pytest.raises(UnencodableValue):
            encode_value(got)

    def test_tagged_form(self):
        from isolate.workers.tagged import from_tagged

        got = from_tagged({"a": {"\0": "a", "g": True, "s": False}}, True)["a"]
        assert type(got) is MirroredAccessor and (got.get, got.set) == (True, False)


class TestDepth:
    def test_constants(self):
        assert protocol.MAX_VALUE_DEPTH == 500
        assert protocol.MAX_ENCODE_DEPTH == 502 and protocol.MAX_DECODE_DEPTH == 508
        assert "MAX_VALUE_DEPTH" in SPEC.read_text() and "= 500" in SPEC.read_text()

    @pytest.mark.parametrize("kind", KINDS)
    def test_encoder_bound_is_exact(self, kind):
        for limit in (protocol.MAX_VALUE_DEPTH, protocol.MAX_ENCODE_DEPTH):
            got = wire_doc(encode_value(nest(kind, limit), max_depth=limit))
            assert depth_of(got) == (limit, 1)
            with pytest.raises(UnencodableValue, match=r"more than 500 levels deep.*MAX_VALUE_DEPTH"):
                encode_value(nest(kind, limit + 1), max_depth=limit)
        assert depth_of(wire(nest(kind, protocol.MAX_ENCODE_DEPTH)))[0] == protocol.MAX_ENCODE_DEPTH
        with pytest.raises(UnencodableValue):
            encode_value(nest(kind, protocol.MAX_ENCODE_DEPTH + 1))

    @pytest.mark.parametrize("kind", KINDS)
    def test_far_too_deep_fails_fast_without_recursion(self, kind):
        import sys

        value = nest(kind, 100_000)
        limit = sys.getrecursionlimit()
        start = time.perf_counter()
        with pytest.raises(UnencodableValue):
            encode_value(value)
        assert time.perf_counter() - start < 1
        assert sys.getrecursionlimit() == limit

    def test_thousand_deep_list_is_unencodable_not_recursion_error(self):
        with pytest.raises(UnencodableValue):
            encode_value(nest("list", 1000))

    def test_wide_is_fine(self):
        value = [{"i": i, "s": JSSet({i})} for i in range(50_000)]
        got = wire(value)
        assert len(got) == 50_000 and got[-1] == {"i": 49_999, "s": JSSet({49_999})}

    @pytest.mark.parametrize("kind", KINDS)
    def test_decoder_bound(self, kind):
        ok = nest(kind, protocol.MAX_DECODE_DEPTH)
        raw = ExtDecoder().unpack(msgpack.packb(encode_value(ok, max_depth=10**6)))
        assert depth_of(decode_value(raw))[0] == protocol.MAX_DECODE_DEPTH
        raw = ExtDecoder().unpack(msgpack.packb(encode_value(nest(kind, protocol.MAX_DECODE_DEPTH + 1),
                                                             max_depth=10**6)))
        with pytest.raises(ProtocolError, match="more than 508 levels deep"):
            decode_value(raw)

    def test_graph_counts_as_a_level(self):
        v = nest("list", protocol.MAX_DECODE_DEPTH - 1)
        v = [v, v]  # shared: a GRAPH around a value MAX_DECODE_DEPTH deep
        raw = ExtDecoder().unpack(msgpack.packb(encode_value(v, max_depth=10**6)))
        with pytest.raises(ProtocolError, match="deep"):
            decode_value(raw)

    def test_stream_refuses_nesting_past_msgpack_stack(self, raw_pipe):
        s, w = raw_pipe
        os.write(w, b"\x93\x02\xa1m\x91" + b"\x91" * 30_000 + b"\xc0")
        start = time.perf_counter()
        with pytest.raises(ProtocolError):
            s.read()
        assert time.perf_counter() - start < 1

    def test_tagged_bounds(self):
        from isolate.workers.tagged import from_tagged, to_tagged

        with pytest.raises(UnencodableValue):
            to_tagged(nest("map", 100_000))
        deep = [1]
        for _ in range(protocol.MAX_DECODE_DEPTH + 1):
            deep = [deep]
        with pytest.raises(ValueError, match="deep"):
            from_tagged(deep, True)
        value = json_round(to_tagged(nest("error", protocol.MAX_VALUE_DEPTH))[0])
        assert depth_of(from_tagged(value, True)) == (protocol.MAX_VALUE_DEPTH, 1)


def _frame(*items):
    """A notification carrying ``items`` after a leading int (as a ctx or parent): how values reach the decoder."""
    return msgpack.packb([2, "m", [0, *items]], use_bin_type=True)


def _ext(code, payload=b""):
    return msgpack.ExtType(code, payload)


# Messages whose values are malformed: each must be a ProtocolError, from the stream or from
# finish_values, and nothing else.
MALFORMED_VALUES = {
    "ref-outside-graph": _frame([[], ref(0)]),
    "ref-past-end": _frame([GRAPH_MARK, [ref(1)]]),
    "ref-at-graph-root": _frame([GRAPH_MARK, ref(0)]),
    "ref-negative": _frame(_ext(ExtType.REF, msgpack.packb(-1))),
    "ref-bool": _frame(_ext(ExtType.REF, msgpack.packb(True))),
    "ref-not-int": _frame(_ext(ExtType.REF, msgpack.packb("0"))),
    "ref-truncated": _frame(_ext(ExtType.REF, b"\xcd\x01")),
    "graph-in-graph": _frame([GRAPH_MARK, [GRAPH_MARK, []]]),
    "graph-short": _frame([GRAPH_MARK]),
    "graph-long": _frame([GRAPH_MARK, 1, 2]),
    "marker-alone": _frame(MAP_MARK),
    "marker-second": _frame([1, SET_MARK]),
    "marker-as-map-value": _frame({"k": ERROR_MARK}),
    "marker-as-map-key": _frame({MAP_MARK: 1}),
    "ref-as-map-key": _frame([GRAPH_MARK, [{ref(0): 1}]]),
    "int-key-in-a-value": _frame([MAP_MARK, {1: 2}]),
    "marker-with-payload": _frame([_ext(ExtType.MAP, b"\x90")]),
    "map-odd": _frame([MAP_MARK, "k"]),
    "error-short": _frame([ERROR_MARK, "Error", "m"]),
    "error-name-not-str": _frame([ERROR_MARK, 1, "m", ""]),
    "error-stack-nil": _frame([ERROR_MARK, "E", "m", None]),
    "error-odd-props": _frame([ERROR_MARK, "E", "m", "", "k"]),
    "error-prop-key-not-str": _frame([ERROR_MARK, "E", "m", "", 1, 2]),
    "undefined-with-payload": _frame(_ext(ExtType.UNDEFINED, b"\x00")),
    "bigint-empty": _frame(_ext(ExtType.BIGINT)),
    "date-short": _frame(_ext(ExtType.DATE, b"\x00" * 7)),
    "date-long": _frame(_ext(ExtType.DATE, b"\x00" * 9)),
    "surrogate-bad-utf8": _frame(_ext(ExtType.SURROGATE_STRING, b"\xff\xfe")),
    "regexp-one-item": _frame(_ext(ExtType.REGEXP, msgpack.packb(["a"]))),
    "regexp-not-str": _frame(_ext(ExtType.REGEXP, msgpack.packb(["a", 1]))),
    "regexp-truncated": _frame(_ext(ExtType.REGEXP, msgpack.packb(["abc", "g"])[:-1])),
    "regexp-trailing": _frame(_ext(ExtType.REGEXP, msgpack.packb(["a", "g"]) + b"\x00")),
    "symbol-registered-not-bool": _frame(_ext(ExtType.SYMBOL, msgpack.packb(["s", 1]))),
    "symbol-nested-ext": _frame(_ext(ExtType.SYMBOL, msgpack.packb([_ext(ExtType.UNDEFINED), True]))),
    "typed-array-unknown-kind": _frame(_ext(ExtType.TYPED_ARRAY, msgpack.packb(["Foo", b""], use_bin_type=True))),
    "typed-array-str-data": _frame(_ext(ExtType.TYPED_ARRAY, msgpack.packb(["Uint8Array", "x"]))),
    "handle-unknown-kind": _frame(_ext(ExtType.HANDLE, msgpack.packb(["thing", 1, "C", ""]))),
    "handle-id-not-int": _frame(_ext(ExtType.HANDLE, msgpack.packb(["object", "1", "C", ""]))),
    "host-function-short": _frame(_ext(ExtType.HOST_FUNCTION, msgpack.packb([1]))),
    "accessor-not-bools": _frame(_ext(ExtType.ACCESSOR, msgpack.packb([1, 0]))),
    "unknown-ext": _frame(_ext(77)),
    "array-as-map-key": b"\x93\x02\xa1m\x92\x00\x81\x90\x00",
    "map-as-map-key": b"\x93\x02\xa1m\x92\x00\x81\x80\x00",
    "too-deep-for-the-decoder": _frame([GRAPH_MARK, nest("list", 600)]),
}


class TestMalformedValues:
    @pytest.mark.parametrize("data", MALFORMED_VALUES.values(), ids=MALFORMED_VALUES.keys())
    def test_protocol_error_and_nothing_else(self, raw_pipe, data):
        s, w = raw_pipe
        os.write(w, data)
        with pytest.raises(ProtocolError):
            message = s.read()
            finish_values(message.params, message.needs_finish)

    def test_protocol_error_is_a_value_error(self):
        assert issubclass(ProtocolError, ValueError)
        from isolate.protocol.messages import ProtocolError as from_messages

        assert from_messages is ProtocolError

    @pytest.mark.parametrize("header", [
        b"\xdb\xff\xff\xff\xff",            # str 32 of 4 GiB
        b"\xc6\xff\xff\xff\xff",            # bin 32
        b"\xdd\xff\xff\xff\xff",            # array 32 of 4G items
        b"\xdf\xff\xff\xff\xff",            # map 32
        b"\xc9\xff\xff\xff\xff\x05",        # ext 32
    ], ids=["str", "bin", "array", "map", "ext"])
    def test_huge_declared_lengths(self, monkeypatch, header):
        monkeypatch.setattr(stream_mod, "MAX_FRAME_BYTES", 4096)
        r, w = os.pipe()
        try:
            s = MessageStream(r, w)
            os.write(w, b"\x93\x02\xa1m\x91" + header + b"\x00" * 8192)
            with pytest.raises(ProtocolError):
                s.read()
        finally:
            os.close(r)
            os.close(w)

    @pytest.mark.parametrize("doc", [
        [1, 1, ["CODE"], None],                     # error triple too short
        [1, 1, ["CODE", "m", None, 4], None],       # too long
        [1, 1, [5, "m", None], None],               # code not a str
        [1, 1, ["CODE", None, None], None],         # message not a str
        [0, True, "m", []],                         # a bool is not a msgid
        [0, -1, "m", []],
        [True, 1, "m", []],                         # nor a kind
        [0, 1, "m", [], 5],
        [[0], 1, "m", []],
    ])
    def test_message_shapes(self, doc):
        with pytest.raises(ProtocolError, match="message|msgid|error|kind|fields"):
            unpack_message(doc, ExtDecoder())

    def test_descriptions_are_bounded(self):
        doc = [0, "1", "m", nest("list", 5000)]
        with pytest.raises(ProtocolError, match="msgid must be a non-negative int, got '1' in an array of 4"):
            unpack_message(doc, ExtDecoder())
        with pytest.raises(ProtocolError, match="unknown message kind an array of 1 items"):
            unpack_message([nest("list", 5000)], ExtDecoder())


def _valid_frames() -> list[bytes]:
    a = [1]
    a.append(a)
    err = ErrorValue("TypeError", "bad", "TypeError: bad", {"code": "E", "n": [1, 2]})
    err.props["self"] = err
    values = [
        [undefined, BigInt(-(2**70)), JSMap({1: {}, "k": JSSet({1, "x"})}), a],
        {"s": "a\ud800", "d": dt.datetime(2000, 1, 1, tzinfo=UTC), "r": JSRegExp("a", "g"), "t":
         JSTypedArray("Uint8Array", b"\x01\x02"), "y": JSSymbol("q"), "h": HandleRef("object", 3, "Foo", ""),
         "f": HostFunctionRef(2, "g"), "e": err, "n": [math.nan, -0.0, math.inf]},
    ]
    frames = [pack_message(Request(7, "call", [0, 1, 2, encode_value(v), {"timeout": 5}])) for v in values]
    frames.append(pack_message(Response(9, ["JS_EXCEPTION", "bad", encode_value([err, {"g": 1}])], None)))
    frames.append(pack_message(Response(9, None, encode_value([values[0], {"acc": MirroredAccessor(True, False)}]))))
    frames.append(pack_message(Notification("release", [1, [2, 3]])))
    return frames


def _read_all(data: bytes) -> None:
    """Feed ``data`` to a fresh MessageStream; finish every value of every message it yields."""
    r, w = os.pipe()
    try:
        os.write(w, data)
        os.close(w)
        w = -1
        s = MessageStream(r, -1)
        while True:
            try:
                message = s.read()
            except StreamClosed:
                return
            if isinstance(message, Response):
                finish_values([message.error, message.result], message.needs_finish)
            else:
                finish_values(message.params, message.needs_finish)
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


class TestFuzz:
    """Random and mutated bytes: the stream and the decoder raise ProtocolError or decode; nothing else."""

    def check(self, data: bytes) -> None:
        try:
            _read_all(data)
        except ProtocolError:
            pass

    def test_valid_frames_decode(self):
        for frame in _valid_frames():
            _read_all(frame)

    def test_random_bytes(self):
        rng = random.Random(20240611)
        start = time.perf_counter()
        for _ in range(3000):
            n = rng.choice([1, 2, 5, 20, 200])
            self.check(bytes(rng.randrange(256) for _ in range(n)))
        assert time.perf_counter() - start < 20

    def test_random_bytes_after_a_message_header(self):
        # Past the envelope the values are what gets parsed: start every sample inside params.
        rng = random.Random(99)
        for _ in range(3000):
            body = bytes(rng.choice(b"\x90\x91\x92\x93\x80\x81\xc0\xc3\xd4\xd5\xc7\x05\x08\x0c\x0d\x00\x01\xa1a")
                         for _ in range(rng.randrange(1, 40)))
            self.check(b"\x93\x02\xa1m\x91" + body)

    def test_mutated_frames(self):
        rng = random.Random(4242)
        frames = _valid_frames()
        start = time.perf_counter()
        for _ in range(4000):
            data = bytearray(rng.choice(frames))
            for _ in range(rng.randrange(1, 4)):
                op = rng.randrange(4)
                i = rng.randrange(len(data))
                if op == 0:
                    data[i] = rng.randrange(256)
                elif op == 1:
                    data[i] ^= 1 << rng.randrange(8)
                elif op == 2:
                    del data[i]
                else:
                    data.insert(i, rng.randrange(256))
            if rng.random() < 0.2:
                data = data[:rng.randrange(len(data))]
            self.check(bytes(data))
        assert time.perf_counter() - start < 30

    def test_random_value_trees(self):
        """Structures built from every ext code and marker, placed anywhere: decode or ProtocolError."""
        rng = random.Random(7)
        leaves = [None, 1, "s", b"b", 1.5, True, ref(0), ref(3), GRAPH_MARK, MAP_MARK, SET_MARK, ERROR_MARK,
                  _ext(ExtType.UNDEFINED), _ext(ExtType.BIGINT, b"\x01"), _ext(ExtType.ACCESSOR, msgpack.packb([True, False])),
                  _ext(ExtType.HANDLE, msgpack.packb(["object", 1, "C", ""])), _ext(ExtType.SYMBOL, msgpack.packb([None, False]))]

        def tree(depth):
            if depth > 5 or rng.random() < 0.35:
                return rng.choice(leaves)
            if rng.random() < 0.8:
                return [tree(depth + 1) for _ in range(rng.randrange(5))]
            return {rng.choice("abc"): tree(depth + 1) for _ in range(rng.randrange(3))}

        outcomes = {"ok": 0, "error": 0}
        for _ in range(5000):
            data = msgpack.packb(tree(0), use_bin_type=True)
            decoder = ExtDecoder()
            try:
                decode_value(decoder.unpack(data))
                outcomes["ok"] += 1
            except ProtocolError:
                outcomes["error"] += 1
        assert outcomes["ok"] > 100 and outcomes["error"] > 100


class TestSplitMessages:
    def test_needs_finish_survives_a_message_split_across_reads(self, raw_pipe, monkeypatch):
        # The marker is parsed from the first chunk; the rest arrives in later reads.
        monkeypatch.setattr(stream_mod, "_READ_CHUNK", 7)
        s, w = raw_pipe
        os.write(w, pack_message(Notification("m", [0, encode_value([JSMap({"k": 1}), "x" * 100])])))
        message = s.read()
        assert message.needs_finish
        got = finish_values(message.params, message.needs_finish)[1]
        assert got == [JSMap({"k": 1}), "x" * 100] and type(got[0]) is JSMap
        os.write(w, pack_message(Notification("m", [0, [1]])))
        assert s.read().needs_finish is False  # and the flag is per message


# -- Map keys and Set members Python equality would merge (issue 16) ------------------

class TestMergeableKeys:
    def test_typed_keys_round_trip_and_stay_apart(self):
        from isolate.protocol import TypedKey

        m = JSMap({1: "number", TypedKey(True): "boolean", TypedKey(BigInt(1)): "bigint", 0: "zero",
                   TypedKey(False): "false"})
        back = wire(m)
        assert type(back) is JSMap and list(back.items()) == list(m.items())
        s = wire(JSSet({1, TypedKey(True), TypedKey(BigInt(1))}))
        assert s == JSSet({1, TypedKey(True), TypedKey(BigInt(1))})

    def test_keys_that_merge_only_in_python_are_wrapped_on_decode(self):
        from isolate.protocol import TypedKey

        # What the wire carries for JS's new Map([[true, 'b'], [1, 'n']]): the boolean arrives first.
        data = msgpack.packb(encode_value([[True, "b"], [1, "n"]]), use_bin_type=True)
        pairs = decode_value(ExtDecoder().unpack(data))
        m = JSMap()
        from isolate.protocol.values import member_key
        for k, v in pairs:
            m[member_key(m, k)] = v
        assert list(m.items()) == [(TypedKey(True), "b"), (1, "n")]  # order kept, the boolean rewrapped

    def test_typed_key_equality_is_by_js_type_and_value(self):
        from isolate.protocol import TypedKey

        assert TypedKey(True) == TypedKey(True) and hash(TypedKey(True)) == hash(TypedKey(True))
        assert TypedKey(True) != TypedKey(1) and TypedKey(True) != True  # noqa: E712
        assert TypedKey(BigInt(1)) != TypedKey(1)
        with pytest.raises(AttributeError):
            TypedKey(True).value = False


class TestParsedOnlyReplies:
    """A reply whose only ext values are JSON_FROM_JS texts (a large mirrored reply) is
    put together without the finishing walk; with a marker as well, the walk places them."""

    @staticmethod
    def _reply(result) -> protocol.Response:
        decoder = ExtDecoder()
        doc = decoder.unpack(protocol.pack_message(protocol.Response(7, None, result)))
        return unpack_message(doc, decoder)

    def test_texts_alone_are_put_in_place_without_the_walk(self):
        text = msgpack.ExtType(17, b'{"doc":{"items":[1,2,{"a":null}]}}')
        rows = [{"id": i, "tags": ["a", "b"]} for i in range(300)]
        response = self._reply({"v": rows, "g": text, "x": [text, {"deep": [[text]]}]})
        assert type(response.needs_finish).__name__ == "ParsedOnly" and response.needs_finish
        value = protocol.finish_values(response.result, response.needs_finish)
        doc = {"doc": {"items": [1, 2, {"a": None}]}}
        assert value == {"v": rows, "g": doc, "x": [doc, {"deep": [[doc]]}]}

    def test_a_text_at_the_root_is_the_value(self):
        response = self._reply(msgpack.ExtType(17, b"[1,[2]]"))
        assert protocol.finish_values(response.result, response.needs_finish) == [1, [2]]

    def test_a_marker_as_well_makes_the_walk_place_them(self):
        text = msgpack.ExtType(17, b'{"a":[1]}')
        response = self._reply({"g": text, "m": [msgpack.ExtType(5, b""), "k", 1]})
        assert response.needs_finish is True
        value = protocol.finish_values(response.result, response.needs_finish)
        assert value["g"] == {"a": [1]} and value["m"] == isolate.JSMap({"k": 1})

    def test_no_ext_value_needs_nothing(self):
        response = self._reply({"v": [1, {"a": 2}]})
        assert response.needs_finish is False
