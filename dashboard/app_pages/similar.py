"""Similar items: being built."""

import streamlit as st

st.title("Similar items")
st.info("This page is being built.")
