"""Which entries of a catalog folder can be read as spec files.

A leaf module (stdlib only): the folder scan (``zoo list`` on a warm cache) and the YAML reader
both ask it, and the scan must not import the YAML parser.
"""

from __future__ import annotations

import stat


def not_a_file(mode: int) -> str | None:
    """What a file system entry is when it is not a regular file ("a FIFO"), else None.

    Reading a FIFO waits for a writer, and a device like /dev/zero never ends: catalog folders
    are anyone's, so such entries are reported and skipped, never opened for a read.
    """
    if stat.S_ISREG(mode):
        return None
    for test, words in (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"
