"""9P2000 decoding: unpack() raises ProtocolError or returns a message that
packs back to bytes which decode to the same message."""
from upas.ninep import codec


def target(data: bytes) -> None:
    try:
        msg = codec.unpack(data)
    except codec.ProtocolError:
        return
    again = codec.unpack(codec.pack(msg))
    assert again == msg, (msg, again)
