"""The marks that the pages' lists share, so that a badge means the same on every page."""

#: On an item among the catalogue's most popular (`dashboard.services.explorer.most_popular_items`):
#: how much a list leans on them, at a glance. Not "hit", which HR@k uses for the held-out item.
POPULAR_BADGE = ":gray-badge[popular]"
