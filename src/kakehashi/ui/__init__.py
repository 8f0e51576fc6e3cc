"""The post-trade web UI (``kakehashi ui``): FastAPI with server-rendered Jinja2 pages."""

from kakehashi.ui.app import create_app

__all__ = ["create_app"]
