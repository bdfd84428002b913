"""The one failure every domain shares: what a request names does not exist, or the caller may not see it.

Out of scope reads as absent, so that existence does not leak. Each service's domain derives its own not-found
kind from this and from its refusal base; its api.py answers it, like every refusal, from its problem table.
"""

from __future__ import annotations


class NotFound(Exception):
    """`what` names the missing thing for the answer ("Alert not found."), unless `detail` says more."""

    def __init__(self, what: str, detail: str | None = None) -> None:
        super().__init__(detail or f"{what} not found.")
        self.what = what
