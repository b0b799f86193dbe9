"""Counting the Table requests the SDK sends (`TableStore.from_settings(request_hook=...)`)."""

from __future__ import annotations

from collections import Counter


class TableRequests:
    """Table requests by kind, as the SDK sends them: a transaction is one `$batch` POST."""

    KINDS = ("reads", "transactions", "other writes")

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, request) -> None:
        http = request.http_request
        if http.url.split("?")[0].endswith("$batch"):
            self.counts["transactions"] += 1
        elif http.method == "GET":
            self.counts["reads"] += 1
        else:
            self.counts["other writes"] += 1

    def take(self) -> Counter[str]:
        taken, self.counts = self.counts, Counter()
        return taken


def described(counts: Counter[str]) -> str:
    """ "12 reads, 3 transactions, 0 other writes" """
    return ", ".join(f"{counts.get(k, 0):,} {k}" for k in TableRequests.KINDS)
