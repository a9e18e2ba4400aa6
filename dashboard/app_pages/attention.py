"""Visual attention: what an attentive model (ACF) looked at, per profile item and per image region.

State in the URL: ``models`` (the ACF run), ``user`` (raw id) and ``view`` (raw, overlay or
truth).
"""

from __future__ import annotations

import math

import streamlit as st

from dashboard.services import attention, checkpoints, datasets, demo, errors
from dashboard.components import glossary, url_state
from dashboard.components.pickers import model_picker
from dashboard.components.sidebar import current_dataset_spec, switch_dataset
from dashboard.text import plain

PER_ROW = 5
TOP_K = 10

st.title("Visual attention", help=glossary.help_for("acf"))
st.caption("Which of a user's pictures, and which parts of each, the image model (ACF) looked at to recommend.")
spec = current_dataset_spec()
with errors.friendly_errors():
    datasets.get_dataset(spec)
if not datasets.has_images(spec):
    st.info(demo.attention_hint(spec), icon=":material/image_search:")
    # The sidebar's box, one click closer: the tour sends newcomers here from a movie dataset.
    if st.button(f"Open {demo.VISUAL_DATASET}", icon=":material/image_search:", key="att_open_visual"):
        switch_dataset(demo.VISUAL_DATASET)
        st.rerun()
    st.stop()
run = model_picker(
    spec, label="Model", max_selections=1, accept=checkpoints.run_has("attention"),
    need="a model with attention over the images (e.g. acf)",
)[0]  # fmt: skip

users = attention.attention_users(run["checkpoint"], spec)
url_user = url_state.read("user")
if url_user is not None and url_user not in set(users):
    name = datasets.split_spec(spec)[0].split(":", 1)[0]
    st.error(f"unknown user id {plain(errors.quoted(url_user))} in {plain(name)}. Pick a user below.",
             icon=":material/person_off:")
    url_user = None
user = st.selectbox(
    "User", users, index=users.index(url_user) if url_user else 0, key="att_user",
    help="Users with a held-out test item come first: the fidelity figures average over them.",
)  # fmt: skip
url_state.write("user", user)

truth = attention.has_attention_truth(spec)
data = attention.user_attention(run["checkpoint"], spec, datasets.get_dataset(spec).user_index(user), TOP_K)
has_components = any(p["beta"] is not None for p in data["profile"])
views = [v for v in attention.ATTENTION_VIEWS if (v != "overlay" or has_components) and (v != "truth" or truth)]
wanted = url_state.read_choice("view", views, "overlay")
view = st.radio(
    "Show on the images", views, index=views.index(wanted) if wanted in views else 0,
    format_func=attention.ATTENTION_VIEWS.get, horizontal=True, key="att_view",
    help=glossary.help_for("beta") + "\n\n" + glossary.help_for("ground truth"),
)  # fmt: skip
url_state.write("view", view)
if not has_components:
    st.caption("This model was trained without image features (features='none'): it has item-level attention only.")

if data["liked_motifs"] is not None:
    liked = plain(", ".join(data["liked_motifs"]))
    st.markdown(f"**This user's hidden taste** (known to the generator, not the model): {liked}.")


def grid_rows(n: int):
    for start in range(0, n, PER_ROW):
        yield range(start, min(n, start + PER_ROW)), st.columns(PER_ROW)


def liked_mark(entry) -> str:
    return "" if entry["liked"] is None else (" ✓" if entry["liked"] else "")


st.subheader("Profile: item-level attention α", help=glossary.help_for("alpha"))
if not data["profile"]:
    st.info("This user has no training items, so there is no profile to attend over.", icon=":material/info:")
else:
    st.caption(
        "The user's most recent training items, newest first. The bar is α, the weight of each item in"
        " the user's vector (they sum to 1): what the attention network reads in the user and the image,"
        " plus how much the item resembles the rest of the user's history (who else chose it, what its image"
        " shows), unless the model was trained with `consistency` off."
        + (" ✓: the image shows a motif the user likes." if truth else "")
    )
    top = max(p["alpha"] for p in data["profile"]) or 1.0
    for indices, columns in grid_rows(len(data["profile"])):
        for i, col in zip(indices, columns):
            entry = data["profile"][i]
            grid = {"overlay": entry["beta"], "truth": entry["truth"]}.get(view)
            with col:
                # The bar above the picture, so a row's bars line up whatever its captions'
                # lengths; captions are Markdown too: a title is shown as text.
                st.progress(min(1.0, entry["alpha"] / top), text=f"α = {entry['alpha']:.3f}")
                st.image(attention.attention_image(spec, entry["item"], grid), caption=plain(entry["title"]) + liked_mark(entry))

st.subheader(f"Top-{TOP_K} recommendations")
recs = data["recommendations"]
for indices, columns in grid_rows(len(recs)):
    for i, col in zip(indices, columns):
        entry = recs[i]
        with col:
            st.image(attention.attention_image(spec, entry["item"]), caption=f"{i + 1}. {plain(entry['title'])}{liked_mark(entry)}")
if truth and recs:
    hits = sum(e["liked"] for e in recs)
    st.caption(f"{hits} of {len(recs)} recommendations show a motif this user likes.")

st.subheader("Attention fidelity", help=glossary.help_for("ground truth"))
if not truth:
    st.info("Fidelity needs ground truth: which image regions each user really likes. Real pictures (posters,"
            " photos) have none, so here attention can be looked at but not scored. The generated catalogue"
            " records it: open the same page there to see attention scored.", icon=":material/info:")  # fmt: skip
    st.page_link("app_pages/attention.py", label=f"Visual attention on {demo.VISUAL_DATASET}",
                 icon=":material/image_search:", query_params={"dataset": demo.VISUAL_DATASET})  # fmt: skip
else:
    overall = attention.attention_fidelity(run["checkpoint"], spec)
    mine = data["fidelity"] or {}

    def shown(value) -> str:
        return "n/a" if value is None or math.isnan(value) else f"{value:.2f}"

    def above_chance(value, chance: float) -> str | None:
        """The figure against what attention spread at random gets, as the arrow under it."""
        return None if value is None or math.isnan(value) else f"{value - chance:+.2f} over chance ({chance:g})"

    cols = st.columns(3)
    lift, item_auc = overall["attention.component_lift"], overall["attention.item_auc"]
    cols[0].metric("Component lift", shown(lift), delta=above_chance(lift, 1.0),
                   help=glossary.help_for("component lift"))  # fmt: skip
    cols[1].metric("Item AUC", shown(item_auc), delta=above_chance(item_auc, 0.5),
                   help=glossary.help_for("item auc"))  # fmt: skip
    cols[2].metric("Test users", f"{overall['attention.users']:,}")
    st.caption(
        f"Over the test users of {plain(spec)}. For user {plain(user)}: "
        f"component lift {shown(mine.get('component_lift'))},"
        f" item AUC {shown(mine.get('item_auc'))} (n/a where the profile lacks items with or without a liked motif)."
    )
