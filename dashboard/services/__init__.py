"""The only package that imports both streamlit and engine: engine calls, caches and error display.

One module per part of the dashboard (`datasets`, `checkpoints`, `explorer`, `be_user`, `embeddings`,
`attention`, `explain`, `training`, `demo`, ...), plus `settings` (what tests point elsewhere) and
`errors` (engine errors as one line). Pages import the module they need
(``from dashboard.services import explorer``) and never import engine themselves. Every cache is
bounded; the logic lives in engine, these modules only cache it and show its errors.
"""
