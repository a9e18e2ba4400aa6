"""Explain: why a feature-mlp scores an item for a user - SHAP and LIME side by side, how far
they agree and how faithful they are, and which features matter across many pairs."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import services
from dashboard.components.pickers import model_picker
from dashboard.components.sidebar import current_dataset_spec

POSITIVE, NEGATIVE = "#d6604d", "#4393c3"

st.title("Explain")
st.caption(
    "Why does the model score this item for this user? SHAP (exact Shapley values against a "
    "summary of training pairs) and LIME (a local linear surrogate) on named features; the "
    "embeddings stand for what the model learned about the user and the item."
)

spec = current_dataset_spec()
run = model_picker(
    spec, label="Model", max_selections=1, accept=lambda r: r["model"] == "feature-mlp", need="a trained feature-mlp"
)[0]
checkpoint = run["checkpoint"]


# ---- user and item (both in the URL) -------------------------------------------------------------
left, right = st.columns(2)
with left:
    user_id = st.text_input("User id", value=st.query_params.get("user") or services.explain_default_user(spec),
                            key="explain_user").strip()  # fmt: skip
previous_user = st.query_params.get("user")
if user_id != previous_user:
    st.query_params["user"] = user_id
    if previous_user is not None:  # another user: start from their top recommendation
        st.query_params.pop("item", None)
        st.session_state.pop("explain_item", None)
candidates = services.explain_candidates(checkpoint, spec, user_id)
titles = {c["item_id"]: f"{c['title']} (#{rank} for this user)" for rank, c in enumerate(candidates, 1)}
wanted = st.query_params.get("item") or (candidates[0]["item_id"] if candidates else "")
if wanted and wanted not in titles:
    titles = {wanted: services.explain_item_title(spec, wanted), **titles}
with right:
    item_id = st.selectbox("Item", list(titles), index=list(titles).index(wanted) if wanted else 0,
                           format_func=titles.get, key="explain_item")  # fmt: skip
if not item_id:
    st.info("This user has no item to explain: pick another user.")
    st.stop()
if item_id != st.query_params.get("item"):
    st.query_params["item"] = item_id

with services.friendly_errors():
    result = services.explain_pair(checkpoint, spec, user_id, item_id)
shap_exp, lime_exp = result["shap"], result["lime"]


# ---- the pair: SHAP waterfall and LIME bars ---------------------------------------------------------
def _label(feature: str, values: dict) -> str:
    value = str(values.get(feature, ""))
    return f"{feature} = {value[:40]}" if value else feature


def waterfall(e: dict) -> go.Figure:
    names = list(e["contributions"])
    fig = go.Figure(
        go.Waterfall(
            orientation="h",
            base=e["base_value"],
            measure=["relative"] * len(names) + ["total"],
            y=[_label(n, e["values"]) for n in names] + ["prediction"],
            x=[e["contributions"][n] for n in names] + [0.0],
            increasing={"marker": {"color": POSITIVE}},
            decreasing={"marker": {"color": NEGATIVE}},
            totals={"marker": {"color": "#878787"}},
            texttemplate="%{delta:+.3f}",
        )
    )
    fig.update_layout(
        title=f"SHAP: base {e['base_value']:.3f} -> prediction {e['prediction']:.3f}",
        yaxis={"autorange": "reversed"}, height=60 + 34 * (len(names) + 1), margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )  # fmt: skip
    return fig


def lime_bars(e: dict) -> go.Figure:
    names = list(e["contributions"])
    weights = [e["contributions"][n] for n in names]
    fig = go.Figure(
        go.Bar(
            orientation="h",
            y=[_label(n, e["values"]) for n in names],
            x=weights,
            marker_color=[POSITIVE if w >= 0 else NEGATIVE for w in weights],
            texttemplate="%{x:+.3f}",
        )
    )
    fig.update_layout(
        title=f"LIME: local surrogate {e.get('surrogate_prediction', float('nan')):.3f}, "
        f"model {e['prediction']:.3f}",
        yaxis={"autorange": "reversed"}, height=60 + 34 * len(names), margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )  # fmt: skip
    return fig


shap_col, lime_col = st.columns(2)
with shap_col:
    st.subheader("SHAP")
    st.plotly_chart(waterfall(shap_exp), key="explain_waterfall")
    error = abs(shap_exp["base_value"] + sum(shap_exp["contributions"].values()) - shap_exp["prediction"])
    st.caption(f"{shap_exp['seconds']:.2f} s; base value + contributions = prediction (error {error:.1e})")
with lime_col:
    st.subheader("LIME")
    st.plotly_chart(lime_bars(lime_exp), key="explain_lime")
    st.caption(f"{lime_exp['seconds']:.2f} s; weights of a linear model fitted to perturbed copies of the pair")

agree, deletion = result["agreement"], result["deletion"]
cols = st.columns(4)
cols[0].metric("Spearman (SHAP vs LIME)", "-" if np.isnan(agree["spearman"]) else f"{agree['spearman']:.2f}")
cols[1].metric("Top-3 overlap", f"{round(agree['top3_overlap'] * 3)}/3")
cols[2].metric("SHAP deletion ratio", f"{deletion['shap']:.2f}" if np.isfinite(deletion["shap"]) else "-")
cols[3].metric("LIME deletion ratio", f"{deletion['lime']:.2f}" if np.isfinite(deletion["lime"]) else "-")


def _badge(text: str, good: bool) -> None:
    st.badge(text, icon=":material/check:" if good else ":material/warning:", color="green" if good else "orange")


badges = st.columns(3)
with badges[0]:
    _badge("SHAP and LIME agree" if agree["top3_overlap"] >= 2 / 3 else "SHAP and LIME disagree",
           agree["top3_overlap"] >= 2 / 3)  # fmt: skip
for col, method in zip(badges[1:], ("shap", "lime")):
    with col:
        ratio = deletion[method]
        good = ratio >= 1.5
        _badge(f"{method.upper()} {'faithful' if good else 'weakly faithful'} here", good)
st.caption(
    "Deletion ratio: how much more the score drops when the 3 features credited most are replaced by "
    "background values than when 3 random features are (1 = no better than chance)."
)


# ---- global summary ---------------------------------------------------------------------------------
st.divider()
st.subheader("Across many pairs")
pairs = st.selectbox("Held-out test pairs", services.GLOBAL_PAIRS, index=len(services.GLOBAL_PAIRS) - 1,
                     key="explain_pairs")  # fmt: skip
requested = st.session_state.setdefault("explain_global_done", set())
key = (checkpoint, spec, int(pairs))
if key not in requested:
    if not st.button("Compute the global SHAP summary", key="explain_global_button", icon=":material/insights:"):
        st.stop()
    requested.add(key)

bar = st.progress(0.0, text="Explaining test pairs...")
summary = services.explain_global(
    checkpoint, spec, int(pairs), _progress=lambda done, total: bar.progress(done / total, text=f"{done}/{total} pairs")
)
bar.empty()
st.caption(
    f"{summary['pairs']} test pairs, "
    f"{'Deep SHAP (DeepLIFT on the network)' if summary['method'] == 'deep' else 'Kernel SHAP'}, "
    f"{summary['seconds']:.1f} s; largest additivity error {summary['max_additivity_error']:.1e}."
)

mean_abs = summary["mean_abs"]
order = list(mean_abs["feature"])
swarm_col, bars_col = st.columns([3, 2])
with swarm_col:
    long = summary["long"]
    rng = np.random.default_rng(0)
    fig = go.Figure()
    for rank, feature in enumerate(order):
        part = long[long["feature"] == feature]
        fig.add_trace(
            go.Scattergl(
                x=part["shap"], y=rank + rng.uniform(-0.3, 0.3, len(part)), mode="markers", name=feature,
                marker={"size": 5, "opacity": 0.6}, text=part["value"],
                hovertemplate="%{text}: %{x:+.3f}<extra></extra>",
            )  # fmt: skip
        )
    fig.update_layout(
        title="SHAP value per pair", showlegend=False, height=80 + 40 * len(order),
        yaxis={"tickvals": list(range(len(order))), "ticktext": order, "autorange": "reversed"},
        xaxis={"title": "contribution to the score", "zeroline": True}, margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )  # fmt: skip
    st.plotly_chart(fig, key="explain_beeswarm")
with bars_col:
    fig = go.Figure(go.Bar(orientation="h", y=order, x=mean_abs["mean_abs"], marker_color="#878787"))
    fig.update_layout(title="Mean |SHAP|", yaxis={"autorange": "reversed"}, height=80 + 40 * len(order),
                      margin={"l": 10, "r": 10, "t": 40, "b": 10})  # fmt: skip
    st.plotly_chart(fig, key="explain_mean_abs")
