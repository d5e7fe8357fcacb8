"""The bot process's outbox workers, each a scheduler job registered in `run_bot.py`.

`telegram`: the outbox to Telegram (status cards, staff messages, staff notices); `webhooks`: signed events to
the backend; `summaries`: a delivery summary to the staff member once a batch is delivered. `common` holds what
they share: the retry rule (backoff with jitter, a deadline) and the job wrapper; the claim rule is
`services.claims`.
"""
