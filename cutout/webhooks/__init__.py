"""Webhook delivery (issues 11 and 12): signed JSON POSTs through the guarded fetcher's address checks,
retried with exponential back-off and jitter, every attempt recorded on a ``Delivery`` the caller can
persist and resume."""

from cutout.webhooks.delivery import (
    MAX_URL,
    Attempt,
    Delivery,
    FailureCode,
    RetryPolicy,
    attempt,
    check_target,
    deliver,
    retried,
    webhook_policy,
)
from cutout.webhooks.signing import CloudinarySigner, Scheme, Signer, StandardSigner

__all__ = [
    "Attempt",
    "CloudinarySigner",
    "Delivery",
    "FailureCode",
    "MAX_URL",
    "RetryPolicy",
    "Scheme",
    "Signer",
    "StandardSigner",
    "attempt",
    "check_target",
    "deliver",
    "retried",
    "webhook_policy",
]
