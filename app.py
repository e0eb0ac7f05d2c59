"""Realtime Studio's entrypoint: ``streamlit run app.py`` (``make run``).

Streamlit imports this module for ``app``, the ASGI application that serves the page plus the API routes
under ``/api/v1`` (``api.routes``, off unless ``REALTIME_API_TOKEN`` is set), the tabs' screen-share
intake (``api.screen_intake``) and the push that reruns their live parts (``api.pulse``), and runs this same
file as
the page script (``__main__``) on every rerun, which draws ``ui.studio``. The import side must not touch
custom components (streamlit-webrtc's): registered before Streamlit's runtime exists, their files are
not served.
"""

from __future__ import annotations

import streamlit as st

if __name__ == "__main__":
    from ui.studio import main

    main()
else:
    from api.pulse import pulse_route
    from api.routes import api_routes
    from api.screen_intake import screen_route

    app = st.App(__file__, routes=[*api_routes(), screen_route(), pulse_route()])
