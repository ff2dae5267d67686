"""Search ranking for the docs site: model pages before the pages that merely list models.

Sphinx's search scores a page by where the query's words appear (title 15, text 5) and
breaks ties by page name, so "deepseek r1" listed ``deepseek-chat`` first and a query such as
"smollm2 chat" put ``ability-chat`` (title "chat", text "smollm2") above SmolLM2's own page.
The scorer below (Sphinx's ``html_search_scorer`` hook, a ``Scorer`` object inlined into
``language_data.js``) lifts every model page above the ability, kind and index pages, and the
page whose name is the query (spaces read as hyphens) above all.

It lives here as text, not as a ``.js`` file, so an installed zoo (which ships only Python
files of ``zoo.docs``) ranks its own small site the same way.
"""

from __future__ import annotations

from pathlib import Path

# Added to a model page's score: more than a title match (15) plus a text match (5), so a
# page listing models never outranks a model page the query also found.
MODEL_PAGE_BOOST = 25
# Added to the model page named exactly like the query.
EXACT_NAME_BOOST = 50

SCORER_JS = """\
// zoo.docs.search_rank: model pages first, the one named like the query before all.
var Scorer = {
  score: (result) => {
    const [docname, , , , score] = result;
    const prefix = "%(models)s/";
    if (!docname.startsWith(prefix)) return score;
    const page = docname.slice(prefix.length);
    const listing = page === "index" || page === "matrix" || /^(ability|kind)-/.test(page);
    if (listing || page.includes("/")) return score;
    const query = (new URLSearchParams(window.location.search).get("q") || "")
      .trim().toLowerCase().split(/\\s+/).join("-");
    return score + %(boost)d + (page === query ? %(exact)d : 0);
  },
  objNameMatch: 11,
  objPartialMatch: 6,
  objPrio: { 0: 15, 1: 5, 2: -5 },
  objPrioDefault: 0,
  title: 15,
  partialTitle: 7,
  term: 5,
  partialTerm: 2,
};
"""


def scorer_js(models_dir: str) -> str:
    """The scorer for a site whose model pages are in ``models_dir`` (a docname prefix)."""
    models = models_dir.strip("/").replace("\\", "/").replace('"', "")
    return SCORER_JS % {"models": models, "boost": MODEL_PAGE_BOOST, "exact": EXACT_NAME_BOOST}


def write_scorer(folder: Path, models_dir: str) -> Path:
    """Write the scorer into ``folder`` (the build's doctree folder) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "zoo-search-scorer.js"
    text = scorer_js(models_dir)
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")
    return path
