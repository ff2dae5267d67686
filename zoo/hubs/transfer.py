"""One file over HTTP with Range: resumes after a dropped connection and after a killed process.

The bytes go to a partial file with a stable name next to the destination, so a later process
finds it and continues with ``Range: bytes=N-`` instead of starting over. The sha256 is
computed while downloading (the partial prefix is hashed first on resume), then the file is
renamed into place. Callers hold a file lock so two processes never append to one partial file.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from zoo.hubs.base import HubError, HubUnreachableError

_CHUNK = 1024 * 1024
_RETRIES = 5  # consecutive attempts without progress before giving up


def _hash_prefix(path: Path) -> tuple[hashlib._Hash, int]:
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as handle:
        while block := handle.read(4 * _CHUNK):
            digest.update(block)
            done += len(block)
    return digest, done


def download_resumable(
    url: str,
    dest: Path,
    *,
    hub: str,
    label: str,
    size: int | None = None,
    sha256: str | None = None,
    headers: Mapping[str, str] | None = None,
    progress: Callable[[str, int, int | None], None] | None = None,
    connect_timeout: float | None = None,
    read_timeout: float | None = None,
) -> int:
    """Download ``url`` to ``dest``; returns the bytes transferred by this call.

    ``dest`` + ``.zoo-partial`` holds the bytes so far. Size and sha256 (when given) are
    checked before the rename; a mismatch deletes the partial file and raises HubError.
    Timeouts default to ``zoo.hubs.timeouts`` (ZOO_HUB_TIMEOUT).
    """
    import httpx  # imported here: the CLI starts without it

    from zoo.hubs.timeouts import hub_timeouts

    configured = hub_timeouts()
    connect_timeout = configured.connect if connect_timeout is None else connect_timeout
    read_timeout = configured.read if read_timeout is None else read_timeout

    partial = dest.with_name(dest.name + ".zoo-partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if partial.exists() and size is not None and partial.stat().st_size > size:
        partial.unlink()  # longer than the file can be: not ours to continue
    digest, done = _hash_prefix(partial) if partial.exists() else (hashlib.sha256(), 0)
    transferred = 0
    failures = 0
    timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
    with httpx.Client(follow_redirects=True, timeout=timeout) as client:
        while size is None or done < size:
            request_headers = dict(headers or {})
            request_headers["Accept-Encoding"] = "identity"
            if done:
                request_headers["Range"] = f"bytes={done}-"
            progress_before = done
            try:
                with client.stream("GET", url, headers=request_headers) as response:
                    if response.status_code == 416 and size is not None and done >= size:
                        break
                    if response.status_code >= 400:
                        response.read()
                        if response.status_code >= 500 and failures + 1 < _RETRIES:
                            raise httpx.RemoteProtocolError(f"HTTP {response.status_code}")
                        raise HubError(
                            f"{hub}: {label}: the server answered HTTP {response.status_code}"
                            f" {_reason(response)}"
                        )
                    if done and response.status_code != 206:
                        # The server ignored Range: start again from byte 0.
                        digest, done = hashlib.sha256(), 0
                        partial.unlink(missing_ok=True)
                    if size is None and response.headers.get("Content-Length"):
                        size = done + int(response.headers["Content-Length"])
                    with _named_errors(partial), open(partial, "ab") as handle:
                        for block in response.iter_bytes(_CHUNK):
                            if size is not None and done + len(block) > size:
                                # A server that sends more than the hub announced could fill
                                # the disk: stop at the first byte too many.
                                handle.close()
                                partial.unlink(missing_ok=True)
                                raise HubError(
                                    f"{hub}: {label}: the server sent more than the {size} "
                                    "bytes announced for it; deleted it, run again to retry"
                                )
                            handle.write(block)
                            digest.update(block)
                            done += len(block)
                            transferred += len(block)
                            if progress is not None:
                                progress(label, done, size)
                if size is None:
                    break  # no length known: the stream ending cleanly is the end
            except (httpx.TransportError, httpx.RemoteProtocolError) as error:
                failures = 0 if done > progress_before else failures + 1
                if failures >= _RETRIES:
                    if isinstance(error, httpx.ConnectError | httpx.ConnectTimeout):
                        # The host that failed, which after a redirect is not the hub's.
                        failed = _failed_origin(error) or _origin(url)
                        raise HubUnreachableError(
                            f"{hub}: cannot connect to {failed}: {error}"
                        ) from error
                    if isinstance(error, httpx.TimeoutException):
                        raise HubError(
                            f"{hub}: {label}: {_failed_origin(error) or _origin(url)} sent "
                            f"nothing for {read_timeout:g} s (ZOO_HUB_TIMEOUT), {_RETRIES} "
                            f"times, after {done} bytes (run again to continue where it stopped)"
                        ) from error
                    raise HubError(
                        f"{hub}: {label}: download kept failing after {done} bytes: {error}"
                        " (run again to continue where it stopped)"
                    ) from error
                time.sleep(min(0.2 * 2**failures, 3.0))
    actual_size = partial.stat().st_size if partial.exists() else 0
    if size is not None and actual_size != size:
        raise HubError(f"{hub}: {label}: got {actual_size} bytes, expected {size}")
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        partial.unlink(missing_ok=True)
        raise HubError(
            f"{hub}: {label}: sha256 of the downloaded file is {digest.hexdigest()[:12]}…, "
            f"the hub says {sha256[:12]}…; deleted it, run again to retry"
        )
    if not partial.exists():
        partial.touch()  # an empty file
    os.replace(partial, dest)
    return transferred


@contextmanager
def _named_errors(path: Path) -> Iterator[None]:
    """A failed write (ENOSPC has no file name of its own) names the file it was writing."""
    try:
        yield
    except OSError as error:
        if error.filename is not None or error.errno is None:
            raise
        raise OSError(error.errno, error.strerror, str(path)) from error


def _failed_origin(error: Exception) -> str | None:
    try:
        return _origin(str(error.request.url))  # type: ignore[attr-defined]
    except (AttributeError, RuntimeError):
        return None


def _origin(url: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _reason(response: object) -> str:
    headers = getattr(response, "headers", {})
    message = headers.get("X-Error-Message") or headers.get("X-Error-Code") or ""
    return f"({message})" if message else ""
