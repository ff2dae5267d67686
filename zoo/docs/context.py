"""What the pages need besides the catalog: engine capabilities and hub links, as plain data.

Built from the plugin manager (``DocsContext.from_plugins``) so pages show exactly the engines
and hubs that are installed; tests and third-party catalogs can build one by hand. Engines are
read only through their declared ``Capabilities``: no engine library is ever imported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from zoo.engine import Capabilities

if TYPE_CHECKING:
    import pluggy

    from zoo.engine import Engine

# Web pages of the hubs zoo knows, used when no hub plugin offers ``Hub.web_url``.
FALLBACK_HUB_URLS: dict[str, str] = {
    "huggingface": "https://huggingface.co/{repo}",
    "modelscope": "https://modelscope.cn/models/{repo}",
    "openmind_hub": "https://modelers.cn/models/{repo}",
    "csghub": "https://opencsg.com/models/{repo}",
}
FALLBACK_HUB_NAMES: dict[str, str] = {
    "huggingface": "Hugging Face",
    "modelscope": "ModelScope",
    "pypi": "PyPI",
    "openmind_hub": "Modelers (openMind)",
    "csghub": "CSGHub",
}


@dataclass(frozen=True)
class EngineInfo:
    """An engine as the docs see it: names and every capability set it declares.

    ``variants`` are builds a user opts into (e.g. vLLM's CPU build); a spec one of them can
    run counts as runnable, and the matrix says which variant it needs.
    """

    name: str
    display_name: str
    capabilities: Capabilities
    variants: tuple[Capabilities, ...] = ()

    @classmethod
    def from_engine(cls, engine: Engine) -> EngineInfo:
        return cls(
            name=engine.name,
            display_name=engine.display_name or engine.name,
            capabilities=engine.capabilities,
            variants=tuple(getattr(engine, "variants", ())),
        )

    @property
    def all_capabilities(self) -> tuple[Capabilities, ...]:
        return (self.capabilities, *self.variants)

    def runs(self, fmt: str, quantization: str, kind: str | None = None) -> bool:
        """Whether some capability set of this engine declares (format, quantization), and
        serves ``kind`` in the same set when one is given (a variant may serve other kinds)."""
        return any(
            _allows(caps, fmt, quantization) and (kind is None or kind in caps.kinds)
            for caps in self.all_capabilities
        )

    def kinds(self) -> tuple[str, ...]:
        """The model kinds some capability set serves, in declaration order."""
        seen: dict[str, None] = {}
        for caps in self.all_capabilities:
            seen.update(dict.fromkeys(caps.kinds))
        return tuple(seen)

    def kind_variant(self, kind: str) -> Capabilities | None:
        """The opt-in variant needed for ``kind`` when the default set does not serve it."""
        if kind in self.capabilities.kinds:
            return None
        return next((v for v in self.variants if kind in v.kinds), None)

    def experimental(self, fmt: str) -> bool:
        """Whether ``fmt`` is only used when the user names this engine (``--engine``)."""
        return any(
            fmt in getattr(caps, "experimental_formats", ()) for caps in self.all_capabilities
        )

    def formats(self) -> tuple[str, ...]:
        seen: dict[str, None] = {}
        for caps in self.all_capabilities:
            seen.update(dict.fromkeys(caps.formats))
        return tuple(seen)

    def quantizations_for(self, fmt: str) -> tuple[str, ...]:
        """The quantizations declared for ``fmt`` across capability sets ("*" means any)."""
        found: dict[str, None] = {}
        for caps in self.all_capabilities:
            found.update(dict.fromkeys(caps.formats.get(fmt, ())))
        return ("*",) if "*" in found else tuple(found)


def _allows(caps: Capabilities, fmt: str, quantization: str) -> bool:
    # The same rule as zoo.engine's default check: "*" or a case-insensitive equal name.
    allowed = caps.formats.get(fmt)
    if allowed is None:
        return False
    return "*" in allowed or any(q.lower() == quantization.lower() for q in allowed)


def fallback_web_url(hub: str, repo: str) -> str | None:
    if hub == "pypi":
        # A PyPI "repo" is a package name, optionally pinned by the source's revision.
        return f"https://pypi.org/project/{repo}/"
    template = FALLBACK_HUB_URLS.get(hub)
    return template.format(repo=repo) if template else None


@dataclass(frozen=True)
class DocsContext:
    """Engines (sorted by name) and how to name and link each hub."""

    engines: tuple[EngineInfo, ...] = ()
    # The engines themselves, by name, for resolution on the reference hosts
    # (``zoo.docs.host_fit``); empty: pages leave that table out.
    runtime_engines: Mapping[str, Engine] = field(default_factory=dict)
    hub_names: Mapping[str, str] = field(default_factory=dict)
    # hub -> function(repo) -> URL or None; hubs without one use the fallbacks above.
    hub_urls: Mapping[str, Callable[[str], str | None]] = field(default_factory=dict)

    @classmethod
    def from_plugins(cls, pm: pluggy.PluginManager | None = None) -> DocsContext:
        from zoo.plugins import get_engines, get_hubs

        engines = get_engines(pm)
        hubs = get_hubs(pm)
        return cls(
            engines=tuple(EngineInfo.from_engine(engines[name]) for name in sorted(engines)),
            runtime_engines={name: engines[name] for name in sorted(engines)},
            hub_names={name: hub.display_name or name for name, hub in hubs.items()},
            hub_urls={name: hub.web_url for name, hub in hubs.items()},
        )

    def hub_name(self, hub: str) -> str:
        return self.hub_names.get(hub) or FALLBACK_HUB_NAMES.get(hub) or hub

    def repo_url(self, hub: str, repo: str, revision: str | None = None) -> str | None:
        """The web page of ``repo`` on ``hub``; PyPI links go to the pinned version."""
        if hub == "pypi" and revision:
            return f"https://pypi.org/project/{repo}/{revision}/"
        web_url = self.hub_urls.get(hub)
        url = web_url(repo) if web_url is not None else None
        return url or fallback_web_url(hub, repo)

    def engines_for(
        self, fmt: str, quantization: str, kind: str | None = None
    ) -> tuple[EngineInfo, ...]:
        return tuple(e for e in self.engines if e.runs(fmt, quantization, kind))
