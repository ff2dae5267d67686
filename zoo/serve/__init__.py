"""``zoo serve``: one OpenAI- and Ollama-compatible endpoint for every model, each started on
demand and kept within the machine's memory budget.

``types`` holds the data every part shares; ``scheduler`` owns which models are loaded;
``backend`` starts them through ``zoo.launch``; ``proxy`` passes requests through; ``app``
assembles the routes. Only this package imports starlette, uvicorn and httpx.
"""
