"""A msgpack transcoder for the eventsourcing library.

Values msgpack cannot hold natively (UUID, datetime, Decimal) travel as an ExtType
whose payload is ``[transcoding name, encoded value]``; the names are stored in the
data, so they must never change.
"""

from __future__ import annotations

from typing import Any

import msgpack
from eventsourcing.persistence import (
    DatetimeAsISO,
    DecimalAsStr,
    Transcoder,
    Transcoding,
    TranscodingNotRegisteredError,
    UUIDAsHex,
)

EXT_TRANSCODED = 1


class MsgpackTranscoder(Transcoder):
    """Encodes event state as msgpack; tuples come back as lists."""

    def __init__(self) -> None:
        self.types: dict[type, Transcoding] = {}
        self.names: dict[str, Transcoding] = {}
        for transcoding in (UUIDAsHex(), DecimalAsStr(), DatetimeAsISO()):
            self.register(transcoding)

    def register(self, transcoding: Transcoding) -> None:
        """Make ``transcoding`` available for its type and its stored name."""
        self.types[transcoding.type] = transcoding
        self.names[transcoding.name] = transcoding

    def encode(self, obj: Any) -> bytes:
        return msgpack.packb(obj, default=self._default, use_bin_type=True)

    def decode(self, data: bytes) -> Any:
        return msgpack.unpackb(
            data, ext_hook=self._ext_hook, raw=False, strict_map_key=False
        )

    def _default(self, obj: Any) -> msgpack.ExtType:
        transcoding = self.types.get(type(obj))
        if transcoding is None:
            raise TranscodingNotRegisteredError(
                f"Object of type {type(obj)} is not serializable by msgpack transcoder"
            )
        payload = msgpack.packb(
            [transcoding.name, transcoding.encode(obj)], use_bin_type=True
        )
        return msgpack.ExtType(EXT_TRANSCODED, payload)

    def _ext_hook(self, code: int, data: bytes) -> Any:
        if code != EXT_TRANSCODED:
            return msgpack.ExtType(code, data)
        name, value = msgpack.unpackb(data, raw=False)
        try:
            transcoding = self.names[name]
        except KeyError:
            raise TranscodingNotRegisteredError(
                f"Data serialized with name {name!r} is not deserializable"
            ) from None
        return transcoding.decode(value)
