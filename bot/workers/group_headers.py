"""The staff groups' topic headers: redraw a topic's first message when its customer's orders change."""

from __future__ import annotations

import threading
from collections.abc import Callable

from flask import Flask
from telebot import TeleBot

from bot.staff.topics import redraw_headers
from bot.workers.common import scheduled


def group_header_job(app: Flask, bot: TeleBot, stop: threading.Event | None = None) -> Callable[[], int]:
    """The scheduler job that edits the header of every topic whose customer's active orders changed."""
    return scheduled(app, "redrawing staff group topic headers", lambda: redraw_headers(bot), stop)
