"""MIME parsing of one stored message (upas/mail/mime.py): every file of
every part can be produced, whatever the headers and bodies say."""
from upas.mail import mime


def target(data: bytes) -> None:
    buf = b"From fuzz Thu Jan  1 00:00:00 2026\n" + data
    top = mime.parse_message(buf, 0, len(buf), mime.Ids(), "1")
    todo, seen = [top], 0
    while todo and seen < 200:
        part = todo.pop()
        seen += 1
        for name in mime.FILES:
            part.file(name)
            part.length(name)
        todo.extend(part.parts)
