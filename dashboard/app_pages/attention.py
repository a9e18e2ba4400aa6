"""Visual attention: being built."""

import streamlit as st

st.title("Visual attention")
st.info("This page is being built.")
