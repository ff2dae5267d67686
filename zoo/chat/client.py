"""Stream one chat completion from an OpenAI-compatible endpoint (httpx, server-sent events).

The key goes in the ``Authorization`` header only, never in a message or a log line. Every
failure is a ``ChatError`` with one line a user can act on: nothing listening, a key wanted,
the server's own error message, a connection cut mid-answer (an engine that crashed).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from zoo.chat.reasoning import ANSWER, REASONING, Piece, ReasoningSplitter
from zoo.chat.sse import StreamFormatError, events
from zoo.errors import ZooError

# Seconds to connect, and to wait for each piece of an answer (a big model's prompt
# processing on a CPU can take minutes before the first token).
CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = 600.0
# Delta fields servers put parsed reasoning in (llama.cpp and vLLM < 0.10; vLLM since).
REASONING_FIELDS = ("reasoning_content", "reasoning")

Message = Mapping[str, str]


class ChatError(ZooError):
    """Talking to the model's endpoint failed."""

    code = "chat"


@dataclass
class Outcome:
    """How the last answer ended: ``finish_reason`` as the server said it ("stop", "length")."""

    finish_reason: str | None = None


class ChatClient:
    """One endpoint and model; ``stream`` sends the conversation and yields the answer."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        reasoning_tags: tuple[str | None, str | None] = (None, None),
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._tags = reasoning_tags
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            headers=headers,
            timeout=httpx.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
            transport=transport,
            trust_env=False,  # a local endpoint: no proxy from the environment in between
        )
        self.outcome = Outcome()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def alive(self) -> bool:
        """Whether the endpoint answers ``GET /models`` (quickly) and serves this model."""
        try:
            answer = self._http.get(f"{self.base_url}/models", timeout=3.0)
        except httpx.HTTPError:
            return False
        return answer.status_code == 200 and self.model in served_models(answer)

    def stream(
        self, messages: Sequence[Message], options: Mapping[str, float | int]
    ) -> Generator[Piece, None, None]:
        """The answer's pieces (thinking and answer) as they arrive."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": list(messages),
            "stream": True,
            **options,
        }
        self.outcome = Outcome()
        splitter = ReasoningSplitter(*self._tags)
        url = f"{self.base_url}/chat/completions"
        try:
            with self._http.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    response.read()
                    raise refused(response, self.base_url)
                for event in events(response.iter_lines()):
                    yield from self._pieces(event, splitter)
        except httpx.ConnectError as error:
            raise ChatError(
                f"cannot reach {self.base_url}: {_reason(error)}",
                hint="is the model still running? `zoo ps` lists instances",
            ) from error
        except httpx.TimeoutException as error:
            raise ChatError(f"no answer from {self.base_url} in time ({_reason(error)})") from error
        except (httpx.RemoteProtocolError, httpx.ReadError) as error:
            raise ChatError(
                f"the connection to {self.base_url} broke mid-answer ({_reason(error)})",
                hint="the engine may have crashed: `zoo logs` shows its log",
            ) from error
        except StreamFormatError as error:
            raise ChatError(f"{self.base_url} sent a stream zoo cannot read: {error}") from error
        yield from splitter.flush()

    def _pieces(self, event: Mapping[str, Any], splitter: ReasoningSplitter) -> Iterator[Piece]:
        if "error" in event:
            raise ChatError(f"the server stopped the answer: {error_message(event)}")
        choices = event.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            return  # a usage-only or keep-alive event
        choice = choices[0]
        delta = choice.get("delta")
        if isinstance(delta, dict):
            for name in REASONING_FIELDS:
                thought = delta.get(name)
                if isinstance(thought, str) and thought:
                    yield Piece(REASONING, thought)
            content = delta.get("content")
            if isinstance(content, str) and content:
                yield from splitter.feed(content)
        if choice.get("finish_reason"):
            self.outcome.finish_reason = str(choice["finish_reason"])


def served_models(answer: httpx.Response) -> set[str]:
    """The model ids a ``GET /v1/models`` answer lists."""
    try:
        data = answer.json().get("data")
    except (ValueError, AttributeError):
        return set()
    if not isinstance(data, list):
        return set()
    return {str(item["id"]) for item in data if isinstance(item, dict) and "id" in item}


def refused(response: httpx.Response, base_url: str) -> ChatError:
    status = response.status_code
    if status == 401:
        return ChatError(
            f"{base_url} wants an API key, and the one sent (if any) was refused",
            hint="set ZOO_API_KEY to the endpoint's key",
        )
    message = error_message(_json(response)) or response.text.strip()[:200] or "no reason given"
    return ChatError(f"{base_url} answered {status}: {' '.join(message.split())}")


def error_message(document: object) -> str:
    """The message of an OpenAI-style error document (``{"error": {"message": ...}}``)."""
    if not isinstance(document, dict):
        return ""
    error = document.get("error")
    if isinstance(error, dict):
        return str(error.get("message") or error.get("code") or "")
    return str(error or document.get("message") or "")


def _json(response: httpx.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _reason(error: Exception) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


__all__ = ["ANSWER", "REASONING", "ChatClient", "ChatError", "Piece"]
