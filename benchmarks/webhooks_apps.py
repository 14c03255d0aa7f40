"""The two apps `ivr bench webhooks` compares, as gunicorn factories.

``full()`` is the real app (signature check, sealed state, engine, render, the
record written to Redis); ``bare()`` is a Flask route returning fixed TwiML.
"""

from __future__ import annotations

from flask import Flask, Response

FIXED = ('<?xml version="1.0" encoding="UTF-8"?><Response><Gather action="/voice/step" '
         'input="dtmf speech"><Say language="es-ES">Para facturas, pulse 1.</Say></Gather>'
         "</Response>")


def bare() -> Flask:
    app = Flask("bare")

    @app.post("/voice/incoming")
    @app.post("/voice/step")
    def fixed() -> Response:
        return Response(FIXED, mimetype="text/xml")

    return app


def full() -> Flask:
    from ivr.app import create_app

    return create_app()
