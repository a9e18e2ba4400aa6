"""The Streamlit dashboard over `engine`: pages are UI only, `services` owns engine calls and caches."""
