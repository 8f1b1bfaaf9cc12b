"""Message stream: msgpack-RPC messages over a pair of file descriptors.

The top of the protocol stack: bytes on a pipe <-> typed messages. msgpack is
self-delimiting, so the stream needs no length prefix; a frame limit bounds
the memory a peer can make us buffer.
"""

from __future__ import annotations

import os
import select

import msgpack

from .codec import ExtDecoder
from .errors import ProtocolError
from .messages import Message, pack_message, unpack_message

__all__ = ["MessageStream", "StreamClosed", "MAX_FRAME_BYTES"]

# Largest single message either side accepts. Large enough for a 100 MB
# transfer, small enough that a corrupt length cannot exhaust memory.
MAX_FRAME_BYTES = 256 * 1024 * 1024
_READ_CHUNK = 256 * 1024


class StreamClosed(EOFError):
    """The peer closed its end (or died)."""


class MessageStream:
    """Reads and writes whole messages. Not thread-safe: one reader, one writer at a time."""

    def __init__(self, read_fd: int, write_fd: int):
        self.read_fd = read_fd
        self.write_fd = write_fd
        # One buffer for every read: os.read(fd, 256 KB) allocates (and, for
        # larger sizes, maps and unmaps) a fresh 256 KB object per message.
        self._buffer = bytearray(_READ_CHUNK)
        self._view = memoryview(self._buffer)
        self._decoder = ExtDecoder()
        self._unpacker = self._new_unpacker()
        self._fed = 0  # bytes fed to the unpacker; its tell() is where the next frame starts
        self._lookahead: Message | None = None  # a message pending() decoded ahead of read()

    def _new_unpacker(self):
        # The frame limit is checked per frame (_feed, _next); the buffer holds at
        # most a partial frame under the limit plus one chunk read after it.
        self._fed = 0
        return msgpack.Unpacker(
            ext_hook=self._decoder, raw=False, strict_map_key=False,
            max_buffer_size=MAX_FRAME_BYTES + _READ_CHUNK,
            # A declared length past the limit fails at its header, not after reading it.
            max_str_len=MAX_FRAME_BYTES, max_bin_len=MAX_FRAME_BYTES, max_ext_len=MAX_FRAME_BYTES,
            max_array_len=MAX_FRAME_BYTES, max_map_len=MAX_FRAME_BYTES // 2,
        )

    def write(self, message: Message) -> None:
        self.write_bytes(pack_message(message))

    def write_bytes(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(self.write_fd, view)
            view = view[written:]

    def read(self) -> Message:
        """Block until one whole message arrives. Raises StreamClosed at end of stream."""
        if self._lookahead is not None:
            message, self._lookahead = self._lookahead, None
            return message
        while True:
            message = self._next()
            if message is not None:
                return message
            self._check_partial_frame()
            self._wait_readable()
            size = os.readv(self.read_fd, (self._buffer,))
            if not size:
                raise StreamClosed("peer closed the stream")
            self._feed(self._view[:size])

    def _wait_readable(self) -> None:
        """Called before each read of the pipe. Here the read itself blocks; a
        subclass that must be interruptible only while it waits waits here."""

    def pending(self) -> bool:
        """Whether a read() would find input without waiting: a whole message
        buffered, or bytes (or the end of the stream) ready on the pipe."""
        if self._lookahead is not None:
            return True
        self._lookahead = self._next()
        if self._lookahead is not None:
            return True
        poller = select.poll()
        poller.register(self.read_fd, select.POLLIN)
        return bool(poller.poll(0))

    def _check_partial_frame(self) -> None:
        """With no whole message buffered, what is buffered is the start of one
        frame: refuse it once it is past the limit, before reading more of it."""
        if self._fed - self._unpacker.tell() > MAX_FRAME_BYTES:
            raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes")

    def _feed(self, chunk: bytes) -> None:
        try:
            self._unpacker.feed(chunk)
        except msgpack.BufferFull:
            raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes") from None
        self._fed += len(chunk)

    def _next(self) -> Message | None:
        """The next whole message already buffered, or None."""
        # The decoder's flag covers everything since the last whole message: the
        # unpacker resumes a partial message where it stopped (its ext hook has
        # already run for what arrived), so the flag is reset only between messages.
        start = self._unpacker.tell()
        try:
            doc = next(self._unpacker)
        except StopIteration:
            return None
        except (ValueError, TypeError, msgpack.UnpackException) as exc:
            # Bad bytes, a bad ext payload, nesting past msgpack's stack (StackError),
            # a declared length past the frame limit, or an array or map used as a
            # map key (TypeError: unhashable). The stream is desynchronized:
            # nothing after this can be trusted.
            self._unpacker = self._new_unpacker()
            self._decoder.needs_finish = False
            if "exceeds max_" in str(exc):  # a declared length past the limit
                raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes: {exc}") from exc
            raise ProtocolError(f"undecodable message: {exc or type(exc).__name__}") from exc
        if self._unpacker.tell() - start > MAX_FRAME_BYTES:
            self._decoder.needs_finish = False
            raise ProtocolError(f"message larger than {MAX_FRAME_BYTES} bytes")
        try:
            return unpack_message(doc, self._decoder)
        finally:
            self._decoder.needs_finish = False
