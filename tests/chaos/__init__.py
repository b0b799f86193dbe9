"""The chaos suite: the real service as two processes on one Azurite, under faults, then audited.

`python -m tests.chaos --seconds 120 --seed 7` (or `make chaos`) starts Azurite, two instances of
`python app.py` in unauthenticated local mode on loopback, and in its own process a fake Bot
Connector (which stands for Teams) that also serves the usage files sent in chat (standing for
SharePoint). For the given time it runs, for several tenants at once: orders pressed twice and
redelivered to both instances, overlapping usage imports through the command line, the HTTP
endpoint and the chat, auto-recharge crossings, connector faults (429 with Retry-After, 5xx,
403, answers held open), and kill -9 of instances and command-line imports, at random and
inside their critical windows, each restarted. Then it lets the background jobs settle and
audits the tables directly. It prints what it did and every check, and exits 1 on any breach.

The seed fixes every choice the driver makes (operations, amounts, faults, kills); the timing of
two processes on a shared machine is not fixed, so a seed repeats a run's plan, not its
interleaving.
"""
