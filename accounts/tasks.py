"""Mail is sent by a worker, after the request's transaction committed: a slow or unreachable mail
server never delays a page, and a registration or reset request takes the same time whether or not
a mail goes out (so its timing does not tell whether an address has an account)."""

from __future__ import annotations

import logging
import smtplib

from celery import shared_task
from django.core.mail import send_mail

logger = logging.getLogger(__name__)


@shared_task(
    autoretry_for=(smtplib.SMTPException, OSError),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=6,
    acks_late=True,
)
def send_email(*, subject: str, body: str, to: str) -> None:
    """Send one plain-text mail through the configured email backend (retried while SMTP fails)."""
    send_mail(subject=subject, message=body, from_email=None, recipient_list=[to])
    logger.info("mail %r sent", subject)
