"""Glossary: the words of the other pages in plain language, rendered from ``docs/glossary.md``.

One text for GitHub and the app: the file is read at run time. The tooltips of the other pages
link here as ``glossary?term=ndcg#ndcg``. The fragment alone is not enough: Streamlit scrolls to
a heading whose anchor matches it, but a first visit writes the dataset into the URL before the
headings arrive, and that rewrite drops the fragment. So the section asked for by ``term`` is
also shown first, above the whole glossary.
"""

import streamlit as st

from dashboard.components import glossary, url_state
from dashboard.text import plain

sections = glossary.sections()
wanted = url_state.read("term")
if wanted in sections:
    section = sections[wanted]
    with st.container(border=True, key="glossary_term"):
        # Bold, not a heading: a second heading would repeat the section's anchor.
        glossary.render(f"**{section.heading}**\n\n{section.body}")
        st.caption("The whole glossary follows.")
elif wanted:
    st.warning(f"The glossary has no entry {plain(repr(wanted))}; the whole glossary follows.", icon=":material/help:")
glossary.render(glossary.text())
