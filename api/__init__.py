"""The studio as a backend for other clients: routes under ``/api/v1`` served beside the Streamlit app.

| module | job |
|---|---|
| ``guard`` | the token check and the per-token call limits (pure) |
| ``routes`` | the Starlette routes: session minting, the SDP proxy, hang-up, frame intake, the example client |
"""
