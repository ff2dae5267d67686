"""What went wrong with a download, in one line: the disk, a timeout, or the host that failed.

The clients raise their own exception types (httpx, httpx2, requests, OSError wrapped in
their errors); hubs ask these functions so that:

- a full disk or a read-only / forbidden cache folder says so and names the path and the
  variable that moves the cache. It is never "cannot reach" (and so never remembered as an
  unreachable hub): the hub answered fine, the disk did not.
- a timeout says whether the connection or the answer never came, and which setting to change.
- a connection that failed after a redirect names the host it was redirected to, not the hub.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from zoo.hubs.base import HubError, HubUnreachableError
from zoo.hubs.timeouts import hub_timeouts

_NO_SPACE = {errno.ENOSPC: "no space left on device", errno.EDQUOT: "disk quota exceeded"}
_NOT_WRITABLE = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
}
_TIMEOUT_NAMES = ("ConnectTimeout", "ReadTimeout", "WriteTimeout", "PoolTimeout", "Timeout")
_CONNECT_NAMES = ("ConnectError", "ConnectionError", "ConnectTimeout", "NewConnectionError")
# Connections that were made and then broke: the host was reached.
_DROPPED = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class HubStorageError(HubError):
    """Writing to the cache failed (disk full, read-only or forbidden folder): not the hub."""


def causes(error: BaseException) -> Iterator[BaseException]:
    """``error``, what it was raised from, and the per-file causes a client collected."""
    seen: set[int] = set()
    todo = [error]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)
        # modelscope collects each file's real error in ``failed_files`` {path: error}.
        failed = getattr(current, "failed_files", None)
        if isinstance(failed, dict):
            todo.extend(e for e in failed.values() if isinstance(e, BaseException))


def storage_error(
    error: BaseException, hub: str, move_with: str, path: Path | None = None
) -> HubStorageError | None:
    """``error`` as a HubStorageError if a full disk or an unwritable folder is behind it."""
    for cause in causes(error):
        if not isinstance(cause, OSError) or cause.errno is None:
            continue
        where = cause.filename or path
        if cause.errno in _NO_SPACE:
            target = f" writing {where}" if where else ""
            return HubStorageError(
                f"{hub}: {_NO_SPACE[cause.errno]}{target}: "
                f"free some space or move the cache with {move_with}"
            )
        if cause.errno in _NOT_WRITABLE:
            target = f"write {where}" if where else "write to the cache"
            return HubStorageError(
                f"{hub}: cannot {target} ({_NOT_WRITABLE[cause.errno]}): "
                f"make the folder writable or move the cache with {move_with}"
            )
    return None


@contextmanager
def storage_guard(hub: str, move_with: str, path: Path | None = None) -> Iterator[None]:
    """Turn a full disk or an unwritable folder inside the block into one HubStorageError."""
    try:
        yield
    except HubError:
        raise
    except OSError as error:
        found = storage_error(error, hub, move_with, path)
        if found is None:
            raise
        raise found from error


def _names(error: BaseException) -> set[str]:
    return {cls.__name__ for cls in type(error).__mro__}


def _failed_url(error: BaseException) -> str | None:
    """The URL of the request that failed (httpx and requests keep it on the exception)."""
    try:
        request = getattr(error, "request", None)
    except RuntimeError:  # httpx raises when an error has no request attached
        return None
    url = getattr(request, "url", None)
    return str(url) if url is not None else None


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


def network_error(error: BaseException, hub: str, endpoint: str) -> HubUnreachableError | None:
    """A timeout or a failed connection behind ``error``, as one line naming the host.

    A connection to another host than ``endpoint`` is one the hub redirected to (a CDN):
    the line names that host, since that is the one to check.
    """
    timeouts = hub_timeouts()
    chain = list(causes(error))
    # The request that failed: clients wrap it (modelscope's NetworkError has no URL; the
    # requests error it wraps has), so look through the whole chain.
    url = next((u for u in map(_failed_url, chain) if u), None)
    host = _origin(url) if url else endpoint
    via = "" if host == _origin(endpoint) else f", redirected there by {endpoint}"
    for cause in chain:
        names = _names(cause)
        if names & {"ConnectTimeout"}:
            return HubUnreachableError(
                f"{hub}: cannot reach {host}{via}: no connection within {timeouts.connect:g} s"
            )
        if names & set(_TIMEOUT_NAMES) or isinstance(cause, TimeoutError):
            return HubUnreachableError(
                f"{hub}: {host}{via} accepted the connection but sent no answer within "
                f"{timeouts.describe()}"
            )
        if names & set(_CONNECT_NAMES) and not isinstance(cause, _DROPPED):
            detail = str(cause).splitlines()[0] if str(cause) else type(cause).__name__
            return HubUnreachableError(f"{hub}: cannot reach {host}{via} ({detail})")
    return None
