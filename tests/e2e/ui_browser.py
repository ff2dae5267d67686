"""A real Chromium (Debian's, driven by Playwright's sync API) looking at the web UI: what a
page logged to its console, the errors it threw, the dialogs it opened, and whether its layout
broke (something wider than the window, a section left empty).

Never ``playwright install``: the browser is the system's ``/usr/bin/chromium``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Dialog, Page

CHROMIUM = "/usr/bin/chromium"
DESKTOP = {"width": 1280, "height": 800}
NARROW = {"width": 375, "height": 740}
# (name, viewport, color scheme): every page is looked at in each.
VARIANTS: list[tuple[str, dict[str, int], str]] = [
    ("desktop-light", DESKTOP, "light"),
    ("desktop-dark", DESKTOP, "dark"),
    ("narrow-light", NARROW, "light"),
    ("narrow-dark", NARROW, "dark"),
]

# Elements that count as content in a section without text (a plot, a form control).
_CONTENT = "img, svg, canvas, input, select, textarea, button, table, video, progress, meter"
# Sections shown to the user that hold neither text nor content; hidden ones do not count.
_EMPTY_SECTIONS = f"""() => [...document.querySelectorAll("main section, [data-section]")]
  .filter((s) => s.getClientRects().length > 0 && getComputedStyle(s).visibility !== "hidden")
  .filter((s) => !s.innerText.trim() && !s.querySelector({_CONTENT!r}))
  .map((s) => s.id ? "#" + s.id : s.outerHTML.slice(0, 120))"""
# What sticks out past the right edge of the window (the widest few), to say what overflowed.
_OVERFLOW = """() => {
  const width = window.innerWidth;
  const root = document.documentElement.scrollWidth;
  const wide = [...document.querySelectorAll("body *")]
    .filter((e) => e.getClientRects().length > 0 && e.getBoundingClientRect().right > width + 1)
    .map((e) => {
      const r = e.getBoundingClientRect();
      const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "");
      const cls = typeof e.className === "string" && e.className ? "." + e.className : "";
      return `${name}${cls.replaceAll(" ", ".")} right=${Math.round(r.right)}`;
    });
  return {scrollWidth: root, innerWidth: width, wide: wide.slice(-6)};
}"""


@dataclass
class Watch:
    """What the pages of one browser context said that a user would not want: console errors
    (CSP violations are console errors in Chromium), uncaught exceptions, dialogs."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    # Console lines expected by the test at hand (a refused login's 401), matched as substrings.
    expected: list[str] = field(default_factory=list)
    # Whether a confirm() is expected (and accepted) rather than a problem: "Unload it?".
    confirm: bool = False

    def attach(self, context: BrowserContext) -> None:
        context.on("page", self.page)

    def page(self, page: Page) -> None:
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append(f"uncaught: {error}"))
        page.on("dialog", self._dialog)

    def _console(self, message: ConsoleMessage) -> None:
        if message.type not in ("error", "warning"):
            return
        text = f"console.{message.type}: {message.text} ({message.location.get('url', '')})"
        if message.type == "warning" and "Content Security Policy" not in message.text:
            return  # warnings are not errors, unless the CSP reports (report-only) through one
        if not any(part in message.text for part in self.expected):
            self.errors.append(text)

    def _dialog(self, dialog: Dialog) -> None:
        if self.confirm and dialog.type == "confirm":
            dialog.accept()
            return
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()

    def take(self) -> list[str]:
        """The problems seen so far (and forget them)."""
        found = self.errors + [f"dialog {d}" for d in self.dialogs]
        self.errors.clear()
        self.dialogs.clear()
        return found


def launch(playwright: Any) -> Browser:
    browser: Browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
    return browser


def layout_problems(page: Page) -> list[str]:
    """Why this page's layout is broken here: sideways overflow, empty visible sections."""
    problems: list[str] = []
    overflow = page.evaluate(_OVERFLOW)
    if overflow["scrollWidth"] > overflow["innerWidth"]:
        problems.append(
            f"scrolls sideways: {overflow['scrollWidth']} px wide in a "
            f"{overflow['innerWidth']} px window; sticking out: {overflow['wide']}"
        )
    empty = page.evaluate(_EMPTY_SECTIONS)
    if empty:
        problems.append(f"empty sections: {empty}")
    return problems
