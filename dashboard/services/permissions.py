"""Who may do what: the operator, and each visitor's session."""

from __future__ import annotations

import os
import secrets

import streamlit as st


# ---- who may do what: the operator, and each visitor's session ----------------------------------
# A visitor cancels only the jobs their session started and deletes only the runs it created;
# the operator (see `operator_mode`) may do both to anything, as on a personal machine.

SESSION_KEY = "session_owner"
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


def session_owner() -> str:
    """This browser tab's token, recorded on the jobs it starts. A random token kept in
    `st.session_state`: it survives page switches, not a reload (a reload is a new session).
    Streamlit's own session id would do, but every AppTest shares one."""
    if SESSION_KEY not in st.session_state:
        st.session_state[SESSION_KEY] = secrets.token_hex(8)
    return st.session_state[SESSION_KEY]


def operator_mode() -> bool:
    """Whether every session has the operator's full control: ``RECSYS_OPERATOR=1`` or ``0``;
    unset, on when the server listens on this machine only (``server.address`` 127.0.0.1, as
    ``.streamlit/config.toml`` sets it), off once it is shared (``--server.address 0.0.0.0``)."""
    value = os.environ.get("RECSYS_OPERATOR", "").strip()
    if value:
        return value not in ("0", "false", "no", "off")
    return (st.get_option("server.address") or "") in _LOOPBACK


def acting_as() -> str | None:
    """The owner to check jobs and runs against: None (anything) for the operator."""
    return None if operator_mode() else session_owner()


def visitors_may_delete() -> bool:
    """False when the operator turned deleting off for visitors (``RECSYS_VISITOR_DELETE=0``)."""
    return os.environ.get("RECSYS_VISITOR_DELETE", "1").strip() not in ("0", "false", "no", "off")



def why_not_delete() -> str:
    """One line on why the Delete button is missing, for a visitor."""
    if not visitors_may_delete():
        return "Deleting runs is turned off on this server."
    return "You can delete only the runs this browser tab trained since the server started."
