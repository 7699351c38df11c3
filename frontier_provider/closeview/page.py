"""The Close view's HTML: landmarks and empty regions that ``static/close-view.js`` fills from the JSON API.

No figures are in the HTML itself and no code runs inline (the page's Content-Security-Policy
allows only this origin's files); without script the page says so.
"""

from __future__ import annotations

import html

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Close - Frontier financial close</title>
<link rel="icon" href="{root}/static/close-icon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{root}/static/close-view.css">
<script src="{root}/static/close-view.js" defer></script>
</head>
<body>
<main id="close-view" data-api="{root}/api" aria-labelledby="close-title">
  <header class="cv-header">
    <h1 id="close-title">Financial close</h1>
    <form class="cv-pickers" id="cv-pickers">
      <label for="cv-period">Period</label>
      <select id="cv-period" name="period" disabled></select>
      <label for="cv-entity">Entity</label>
      <select id="cv-entity" name="entity" disabled></select>
    </form>
  </header>
  <p id="cv-status" class="cv-status" role="status" aria-live="polite">Loading the close&hellip;</p>
  <noscript><p class="cv-status">The Close view needs JavaScript to load its figures.</p></noscript>
  <section aria-labelledby="cv-matrix-title">
    <h2 id="cv-matrix-title">Close status by period and entity</h2>
    <p class="cv-legend" id="cv-legend">
      <span class="cv-badge cv-final"><span aria-hidden="true">&#10003;</span> final</span>
      <span class="cv-badge cv-preliminary"><span aria-hidden="true">&#9680;</span> preliminary</span>
      <span class="cv-badge cv-failed"><span aria-hidden="true">&#10007;</span> failed</span>
      <span class="cv-badge cv-not-run"><span aria-hidden="true">&ndash;</span> not run</span>
      Health score out of 10, credit rating, overall risk.
    </p>
    <div class="cv-scroll" id="cv-matrix"></div>
  </section>
  <section aria-labelledby="cv-period-title">
    <h2 id="cv-period-title">Period</h2>
    <div class="cv-scroll" id="cv-period-summary"></div>
  </section>
  <section aria-labelledby="cv-entity-title" id="cv-entity-section">
    <h2 id="cv-entity-title">Entity</h2>
    <div id="cv-trend"></div>
    <div id="cv-detail"></div>
  </section>
</main>
</body>
</html>
"""


def render_page(root: str) -> str:
    """The page, its asset and API links under ``root`` (the app's mount point, e.g. ``/frontier-close``).

    :param root: the path the app is mounted at; empty when it runs on its own
    """
    return _PAGE.format(root=html.escape(root.rstrip("/"), quote=True))
