"""The baseline of bench/api.py: one route with a small JSON answer, served with the same gunicorn settings."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/bare")
def bare():
    return jsonify({"user_id": 1001, "known": True, "subscribed": True, "bot_url": "https://t.me/BenchBot"})
