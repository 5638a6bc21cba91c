"""Retry policies for activities.

The Python SDK's ``RetryOptions`` only serialises a fixed interval and an
attempt count, but the Durable extension's ``RetryOptionsConverter`` also
reads ``backoffCoefficient`` and ``maxRetryIntervalInMilliseconds``. This
subclass sends them, so transient storage errors are retried with real
exponential backoff by the extension's retry interceptor (and by the local
dev host, which copies it).
"""

from __future__ import annotations

from typing import Any

import azure.durable_functions as df

from imagebatch.messages import RetryOptions
from orchestrators.bounded_fan_out import RetryPolicy


class BackoffRetryOptions(df.RetryOptions):
    def __init__(
        self,
        first_retry_interval_in_milliseconds: int,
        max_number_of_attempts: int,
        backoff_coefficient: float = 2.0,
        max_retry_interval_in_milliseconds: int | None = None,
    ) -> None:
        super().__init__(first_retry_interval_in_milliseconds, max_number_of_attempts)
        self.backoff_coefficient = backoff_coefficient
        self.max_retry_interval_in_milliseconds = max_retry_interval_in_milliseconds

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = dict(super().to_json())
        data["backoffCoefficient"] = self.backoff_coefficient
        if self.max_retry_interval_in_milliseconds is not None:
            data["maxRetryIntervalInMilliseconds"] = self.max_retry_interval_in_milliseconds
        return data


def fan_out_retry(options: RetryOptions) -> RetryPolicy:
    """The run's retry settings as ``bounded_fan_out``'s own retries."""
    return RetryPolicy(
        first_interval_ms=options.first_interval_ms,
        max_attempts=max(1, options.max_attempts),
        backoff=options.backoff,
        max_interval_ms=options.max_interval_ms,
    )


def retry_policy(options: RetryOptions) -> BackoffRetryOptions:
    """The same policy as the orchestrator's own retries (``RetryPolicy``), in
    the form ``call_activity_with_retry`` sends to the extension."""
    policy = fan_out_retry(options)
    return BackoffRetryOptions(
        first_retry_interval_in_milliseconds=policy.first_interval_ms,
        max_number_of_attempts=policy.max_attempts,
        backoff_coefficient=policy.backoff,
        max_retry_interval_in_milliseconds=policy.max_interval_ms,
    )
