"""Embeddings: being built."""

import streamlit as st

st.title("Embeddings")
st.info("This page is being built.")
