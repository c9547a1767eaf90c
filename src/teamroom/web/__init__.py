"""The live dashboard (``teamroom web``): a page on 127.0.0.1 that shows the team and lets a human step in.

`create_app` is the Starlette app over an open store, mountable elsewhere; `serve_web` runs it alone.
"""

from __future__ import annotations

from teamroom.web.app import create_app
from teamroom.web.run import DEFAULT_PORT, ENV_WEB_PORT, serve_web

__all__ = ["DEFAULT_PORT", "ENV_WEB_PORT", "create_app", "serve_web"]
