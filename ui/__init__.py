"""Streamlit rendering helpers shared by the pages: sidebar, transcript bubbles, status line.

No protocol logic lives here: the pages read `realtime` snapshots and call the Bridge's methods.
"""
