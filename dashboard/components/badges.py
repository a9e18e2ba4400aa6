"""The marks that the pages' lists share, so that a badge means the same on every page."""

#: On an item among the catalogue's biggest hits (`dashboard.services.explorer.biggest_hits`):
#: how much a list leans on them, at a glance.
HIT_BADGE = ":gray-badge[hit]"
