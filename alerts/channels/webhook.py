"""Webhooks: a JSON POST signed with HMAC-SHA256, sent only to a checked public address.

The request (documented in the README, "Webhooks"):

    POST <url>
    Content-Type: application/json
    User-Agent: tradingagent-webhook/1
    X-Tradingagent-Event: breaker_tripped
    X-Tradingagent-Delivery: 812-5          (alert id - channel id: the same on every retry)
    X-Tradingagent-Timestamp: 1764601200    (Unix seconds when this attempt was signed)
    X-Tradingagent-Signature: sha256=<hex>

    <hex> = HMAC-SHA256(key = the channel's secret (UTF-8),
                        message = <timestamp> + "." + <the raw body bytes>)

A receiver recomputes it over the body exactly as received, compares in constant time and refuses
a timestamp more than a few minutes old (a replayed request); it de-duplicates on the delivery id.

Answers: 2xx is delivered; 408, 425, 429 and 5xx are retried (Retry-After is honoured, up to an
hour); a 3xx is a failure (redirects are not followed: they could lead anywhere); other 4xx are
permanent failures.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING

import httpx
from django.conf import settings

from alerts.channels import DeliveryError
from alerts.channels.messages import webhook_body
from alerts.channels.netguard import AddressRefused, resolve

if TYPE_CHECKING:
    from alerts.models import Alert, Channel

SIGNATURE_HEADER = "X-Tradingagent-Signature"
TIMESTAMP_HEADER = "X-Tradingagent-Timestamp"
EVENT_HEADER = "X-Tradingagent-Event"
DELIVERY_HEADER = "X-Tradingagent-Delivery"
RETRYABLE = {408, 425, 429}
MAX_ERROR_BODY = 300


def signature(*, secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for this timestamp and body."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(*, secret: str, timestamp: str, body: bytes, header: str, tolerance_seconds: int = 300) -> bool:
    """What a receiver does (also the tests' receiver): signature and freshness."""
    try:
        age = abs(time.time() - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_seconds and hmac.compare_digest(
        signature(secret=secret, timestamp=timestamp, body=body), header
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    return min(max(seconds, 1.0), 3600.0)


def send_webhook(*, channel: Channel, alert: Alert, attempt: int) -> None:
    delivery_id = f"{alert.pk}-{channel.pk}"
    body = webhook_body(alert, delivery_id=delivery_id, attempt=attempt)
    timestamp = str(int(time.time()))
    try:
        target = resolve(channel.url)
    except AddressRefused as exc:
        raise DeliveryError(str(exc), transient=False) from None
    except LookupError as exc:
        raise DeliveryError(str(exc), transient=True) from None
    url = httpx.URL(channel.url)
    headers = {
        # The name the user wrote: virtual hosts and TLS certificates are about it, not the address.
        "Host": url.netloc.decode("ascii"),
        "Content-Type": "application/json",
        "User-Agent": "tradingagent-webhook/1",
        EVENT_HEADER: alert.event or alert.kind,
        DELIVERY_HEADER: delivery_id,
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: signature(secret=channel.secret, timestamp=timestamp, body=body),
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    timeout = float(settings.ALERT_WEBHOOK_TIMEOUT_SECONDS)
    try:
        # trust_env=False: no proxy from the environment may carry the request somewhere unchecked.
        with (
            httpx.Client(timeout=timeout, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", url.copy_with(host=target.address), content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            status = response.status_code
            excerpt = b""
            if not 200 <= status < 300:
                for chunk in response.iter_bytes():
                    excerpt += chunk
                    if len(excerpt) >= MAX_ERROR_BODY:
                        break
    except httpx.TimeoutException:
        raise DeliveryError(f"no answer within {timeout:g} s", transient=True) from None
    except httpx.HTTPError as exc:
        raise DeliveryError(f"could not reach {target.host} ({type(exc).__name__}: {exc})", transient=True) from None
    if 200 <= status < 300:
        return
    said = excerpt[:MAX_ERROR_BODY].decode("utf-8", errors="replace").strip()
    detail = f"HTTP {status}" + (f": {said}" if said else "")
    if 300 <= status < 400:
        raise DeliveryError(f"{detail} (redirects are not followed; use the final URL)", transient=False)
    if status in RETRYABLE or status >= 500:
        raise DeliveryError(detail, transient=True, retry_after=_retry_after(response.headers.get("Retry-After")))
    raise DeliveryError(detail, transient=False)
