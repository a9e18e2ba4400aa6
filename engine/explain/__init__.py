"""Explanations: SHAP/LIME over the tabular view (`shap_lime`), Deep SHAP (`deep_shap`),
"because you liked" (`history`) and attention read-outs and fidelity (`attention`)."""
