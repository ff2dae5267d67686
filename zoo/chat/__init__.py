"""``zoo run``: talk to a model through its OpenAI-compatible endpoint.

One module per job: ``sse`` reads a server-sent event stream, ``reasoning`` tells a reasoning
model's thinking from its answer, ``client`` streams one chat completion (httpx), ``settings``
holds what each request sends and where each value came from, ``commands`` reads the chat's
slash commands, ``endpoint`` finds or launches the model's server, ``terminal`` is the
interactive loop. Nothing here is imported before ``zoo run`` runs.
"""
