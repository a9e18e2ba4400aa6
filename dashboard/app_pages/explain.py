"""Explain: why a model with named features (the feature-view ability, e.g. feature-mlp)
scores an item for a user - SHAP and LIME, how far they agree and how faithful they are, and
which features matter across many pairs."""

from __future__ import annotations

import numpy as np
import streamlit as st

from dashboard.services import checkpoints, errors, explain
from dashboard.components import explain_figures, glossary, url_state
from dashboard.components.pickers import model_picker
from dashboard.components.sidebar import current_dataset_spec
from dashboard.text import plain

st.title("Explain")
st.caption(
    "Why does the model give this item this score for this user? Two methods share the score out "
    "among the inputs it sees (such as the item's popularity and genres, the user's activity and "
    "favourite genres, and two embeddings that stand for what the model learned about the user and "
    "the item): SHAP splits it fairly (Shapley values), LIME fits a simple straight-line model "
    "around this one pair. Red bars push the score up, blue ones down."
)

spec = current_dataset_spec()
run = model_picker(
    spec, label="Model", max_selections=1, accept=checkpoints.run_has("feature_view"),
    need="a trained model with named features to explain (e.g. feature-mlp)",
)[0]  # fmt: skip
checkpoint = run["checkpoint"]


# ---- user and item (both in the URL) -------------------------------------------------------------
left, right = st.columns(2)
with left:
    default_user = url_state.read("user") or explain.explain_default_user(checkpoint, spec)
    user_id = st.text_input("User id", value=default_user, key="explain_user").strip()
previous_user = url_state.read("user")
if user_id != previous_user:
    url_state.write("user", user_id)
    if previous_user is not None:  # another user: start from their top recommendation
        url_state.write("item", None)
        st.session_state.pop("explain_item", None)
candidates = explain.explain_candidates(checkpoint, spec, user_id)
titles = {c["item_id"]: f"{c['title']} (#{rank} for this user)" for rank, c in enumerate(candidates, 1)}
wanted = url_state.read("item") or (candidates[0]["item_id"] if candidates else "")
if wanted and wanted not in titles:
    titles = {wanted: explain.explain_item_title(spec, wanted), **titles}
with right:
    item_id = st.selectbox("Item", list(titles), index=list(titles).index(wanted) if wanted else 0,
                           format_func=titles.get, key="explain_item")  # fmt: skip
if not item_id:
    st.info("This user has no item to explain: pick another user.")
    st.stop()
url_state.write("item", item_id)

with errors.friendly_errors():
    result = explain.explain_pair(checkpoint, spec, user_id, item_id)
shap_exp, lime_exp = result["shap"], result["lime"]


# ---- the pair: SHAP waterfall and LIME bars ---------------------------------------------------------
# One above the other, each the page's full width: side by side, the feature names and values
# did not fit at 1024x768.
st.subheader("SHAP", help=glossary.help_for("shap"))
st.plotly_chart(explain_figures.shap_waterfall(shap_exp), key="explain_waterfall")
total = shap_exp["base_value"] + sum(shap_exp["contributions"].values())
error = abs(total - shap_exp["prediction"])
# The figures are shown to three decimals: an error below that is "exact" to the reader.
adds_up = ("they add up to this pair's score (to the third decimal)" if error < 5e-4 else
           f"they add up to {total:.3f}, {error:.3f} away from this pair's score (the "
           f"{glossary.term_link('additivity error')})")  # fmt: skip
st.caption(f"From the model's average score over typical pairs, each bar adds one feature's share: {adds_up}. "
           f"Computed in {shap_exp['seconds']:.2f} s.")

st.subheader("LIME", help=glossary.help_for("lime"))
st.plotly_chart(explain_figures.lime_bars(lime_exp), key="explain_lime")
st.caption(f"Weights of a straight-line model fitted to random variations of this pair. {lime_exp['seconds']:.2f} s.")

agree, deletion = result["agreement"], result["deletion"]
cols = st.columns(4)
# Short labels a student reads as questions, short enough for four columns on a 1024-pixel
# projector ("Spearman (SHAP vs LIME)" and "2.95x chance" were cut there); the glossary's names
# (Spearman, top-3 overlap, deletion ratio) stay in the tooltips and the caption below.
cols[0].metric("Same order?", "-" if np.isnan(agree["spearman"]) else f"{agree['spearman']:.2f}",
               help=glossary.help_for("spearman"))  # fmt: skip
cols[1].metric("Same top 3?", f"{round(agree['top3_overlap'] * 3)} of 3", help=glossary.help_for("top-3 overlap"))
for col, method in zip(cols[2:], ("shap", "lime")):
    col.metric(f"{method.upper()}'s top 3", f"{deletion[method]:.2f}×" if np.isfinite(deletion[method]) else "-",
               help=glossary.help_for("deletion ratio"))  # fmt: skip
verdict = explain.explain_verdict(result)


def _badge(text: str, good: bool) -> None:
    st.badge(text, icon=":material/check:" if good else ":material/warning:", color="green" if good else "orange")


badges = st.columns(3)
with badges[0]:
    _badge("SHAP and LIME agree" if verdict.agree else "SHAP and LIME disagree", verdict.agree)
for col, method in zip(badges[1:], ("shap", "lime")):
    with col:
        good = verdict.faithful[method]
        _badge(f"{method.upper()} {'faithful' if good else 'weakly faithful'} here", good)
st.caption(
    "Same order?: the Spearman correlation of the two rankings of the features (1 = the same order). SHAP's and "
    "LIME's top 3: how many times more the score drops when the 3 features each credits most are replaced by "
    "typical values than when 3 random features are (the deletion ratio: 1× is no better than chance; faithful "
    "from 1.5×). " + glossary.link("faithfulness", "What does faithful mean?")
)


def _ratio(method: str) -> str:
    value = deletion[method]
    return f"{value:.1f}" if np.isfinite(value) else "undefined"


def conclusion(verdict) -> str:
    """What to conclude, in words; the verdict (engine.explain.shap_lime.agreement_verdict) picks which."""
    shared = ", ".join(f"**{plain(explain_figures.feature_words(name))}**" for name in verdict.shared)
    if verdict.verdict == "agree":
        return (f"Both methods rank {shared} among the top 3, and removing those features lowers the score more "
                "than chance: the model's score for this pair rests mostly on them.")
    if verdict.verdict == "agree-weak":
        return (f"Both methods rank {shared} among the top 3, but removing those features lowers the score little "
                "more than removing random ones: read them as a hint, not as the reason.")
    why = (" Why they can disagree: both approximate the model, in different ways. SHAP shares the score out over "
           "every combination of features against typical pairs; LIME fits a straight line to random copies of "
           "this pair. When features act together, the two answer slightly different questions.")
    if verdict.more_faithful is not None:
        best = verdict.more_faithful
        other = "lime" if best == "shap" else "shap"
        text = (f"**Believe {best.upper()} for this pair.** Removing its top 3 features lowers the score "
                f"{_ratio(best)} times as much as removing random ones, against {_ratio(other)} for "
                f"{other.upper()}: its ranking points better at what the model uses here.")
        if shared:
            text += f" Both also rank {shared} high: that is the safest part of either explanation."
        return text + why
    if verdict.verdict == "both-faithful":
        trust = f"Trust {shared} (high in both) most; the rest of the order is uncertain." if shared else (
            "Their orders of the features are uncertain.")
        return ("Both pass the deletion check, so each found features the model uses, but they weigh them "
                f"differently. {trust}" + why)
    return ("Neither passes the deletion check clearly, so neither ranking is reliable for this pair: the score is "
            "spread over many features or is close to the base value. The summary across many pairs below says "
            "more about what the model relies on." + why)


st.info(conclusion(verdict) + " " + glossary.link("when-shap-and-lime-disagree", "How to read this"),
        icon=":material/check_circle:" if verdict.agree else ":material/psychology_alt:")  # fmt: skip


# ---- global summary ---------------------------------------------------------------------------------
st.divider()
st.subheader("Across many pairs")
pairs = st.selectbox("Held-out test pairs", explain.GLOBAL_PAIRS, index=len(explain.GLOBAL_PAIRS) - 1,
                     key="explain_pairs")  # fmt: skip
requested = st.session_state.setdefault("explain_global_done", set())
key = (checkpoint, spec, int(pairs))
if key not in requested:
    if not st.button("Compute the global SHAP summary", key="explain_global_button", icon=":material/insights:"):
        st.stop()
    requested.add(key)

progress_slot = st.empty()  # a bar only while the summary is computed; nothing once it is stored
summary = explain.explain_global(
    checkpoint, spec, int(pairs),
    progress=lambda done, total: progress_slot.progress(done / total, text=f"Explaining test pairs: {done}/{total}"),
)  # fmt: skip
progress_slot.empty()
st.caption(
    f"{summary['pairs']} test pairs, "
    f"{'Deep SHAP (DeepLIFT on the network)' if summary['method'] == 'deep' else 'Kernel SHAP'}, "
    f"{summary['seconds']:.1f} s; "
    + ("each pair's bars add up to its score (to the third decimal)." if summary["max_additivity_error"] < 5e-4 else
       f"a pair's bars miss its score by up to {summary['max_additivity_error']:.3f} (the "
       f"{glossary.term_link('additivity error')}).")  # fmt: skip
)

mean_abs = summary["mean_abs"]
order = list(mean_abs["feature"])
swarm_col, bars_col = st.columns([3, 2])
with swarm_col:
    st.plotly_chart(explain_figures.shap_beeswarm(summary["long"], order), key="explain_beeswarm")
with bars_col:
    st.plotly_chart(explain_figures.mean_abs_bars(mean_abs), key="explain_mean_abs")
