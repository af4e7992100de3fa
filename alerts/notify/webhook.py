"""A generic JSON webhook: the whole work order, signed when a secret is set.

The signature follows the common `sha256=<hex HMAC of "timestamp.body">` scheme, so a receiver
can check both origin and freshness; `X-Facility-Delivery` is the key to de-duplicate on, since
delivery is at-least-once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
from dataclasses import dataclass

import orjson

from alerts.notify.interface import Notice, Outcome, Request, Verdict


def http_verdict(status: int) -> Verdict | None:
    """The verdict an HTTP status alone decides; None for a 2xx whose body must be read."""
    if 200 <= status < 300:
        return None
    if status in (408, 425, 429) or status >= 500:
        return Verdict(Outcome.RETRY, f"HTTP {status}")
    return Verdict(Outcome.FAILED, f"HTTP {status}")


def notice_document(notice: Notice) -> dict[str, object]:
    return {
        "event_id": notice.event_id,
        "event": notice.event,
        "at_ms": notice.at_ms,
        "note": notice.note,
        "url": notice.url,
        "building_name": notice.building_name,
        "unit_name": notice.unit_name,
        "device_name": notice.device_name,
        "work_order": dataclasses.asdict(notice.order),
    }


@dataclass(frozen=True, slots=True)
class WebhookChannel:
    url: str
    secret: str | None = None
    name: str = "webhook"

    def request(self, notice: Notice, now_ms: int) -> Request:
        body = orjson.dumps(notice_document(notice))
        headers = {
            "Content-Type": "application/json",
            "X-Facility-Event": notice.event,
            "X-Facility-Delivery": str(notice.event_id),
        }
        if self.secret:
            timestamp = str(now_ms // 1000)
            mac = hmac.new(self.secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
            headers["X-Facility-Timestamp"] = timestamp
            headers["X-Facility-Signature"] = "sha256=" + mac.hexdigest()
        return Request(self.url, body, headers)

    def verdict(self, status: int, body: bytes) -> Verdict:
        return http_verdict(status) or Verdict(Outcome.SENT)
