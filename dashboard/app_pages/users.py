"""User explorer: being built."""

import streamlit as st

st.title("User explorer")
st.info("This page is being built.")
