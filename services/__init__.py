"""The service layer: plain functions that own their transaction, shared by the web app and the bots.

Neither Flask request objects nor telebot types come in here: callers pass plain values and get
plain results (dataclasses) or a `ServiceError` with a machine code and a message for a person.
"""
