"""Entry point: `streamlit run dashboard/streamlit_app.py`.

The frame around every page: page config, the shared sidebar (dataset picker) and navigation.
"""

import sys
from pathlib import Path

# `streamlit run` puts only this folder on sys.path; the engine lives one level up.
ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.threads import configure_process  # noqa: E402
configure_process("dashboard")  # before torch is first imported: passive OpenMP workers (engine/threads.py)

import streamlit as st  # noqa: E402

# An emoji favicon is drawn in the page itself; a material icon would be fetched from the internet.
st.set_page_config(page_title="Recommender explorer", page_icon="🧭", layout="wide")

PAGES = [
    st.Page("app_pages/data.py", title="Data", icon=":material/table_chart:", default=True),
    st.Page("app_pages/models.py", title="Models", icon=":material/model_training:"),
    st.Page("app_pages/users.py", title="User explorer", icon=":material/person_search:"),
    st.Page("app_pages/be_user.py", title="Be the user", icon=":material/person_add:"),
    st.Page("app_pages/similar.py", title="Similar items", icon=":material/join_inner:"),
    st.Page("app_pages/embeddings.py", title="Embeddings", icon=":material/scatter_plot:"),
    st.Page("app_pages/attention.py", title="Visual attention", icon=":material/image_search:"),
    st.Page("app_pages/explain.py", title="Explain", icon=":material/lightbulb:"),
    st.Page("app_pages/compare.py", title="Compare", icon=":material/compare_arrows:"),
    st.Page("app_pages/glossary.py", title="Glossary", icon=":material/menu_book:"),
]

page = st.navigation(PAGES)
# The first visit after the server starts imports the engine (torch and the models: seconds on a
# 2-core machine); say so instead of leaving the page blank. Later visits find it imported.
with st.spinner("Starting the engine (once per server start, a few seconds)..."):
    from dashboard.components import url_state
    from dashboard.components.page_errors import reported
    from dashboard.components.sidebar import dataset_picker
    from dashboard.components.tour import next_step
    from dashboard import session_cleanup
session_cleanup.start()  # once per server: closed tabs' sessions and memory are released
url_state.restore()
with st.sidebar, reported("the sidebar"):
    next_step(page.title)  # the README's tour, one page at a time
    dataset_picker()
try:
    with reported(f"the {page.title} page"):
        page.run()
finally:  # also when the page stops early (st.stop) or a rerun is requested
    url_state.remember()
