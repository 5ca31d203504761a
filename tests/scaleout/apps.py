"""A probe app for the child processes: it appends every payment signal to a shared file."""

from __future__ import annotations

import os
from typing import Any

from django.apps import AppConfig

from django_pi_payments import signals

PROBED = {
    "approved": signals.payment_approved,
    "completed": signals.payment_completed,
    "cancelled": signals.payment_cancelled,
    "refunded": signals.payment_refunded,
}


def _append(name: str, identifier: str) -> None:
    path = os.environ.get("PI_SIGNAL_LOG")
    if path:
        line = f"{os.getpid()} {name} {identifier}\n".encode()
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, line)
        finally:
            os.close(descriptor)


class ScaleoutProbeConfig(AppConfig):
    """Connects the signal probe in every process that loads ``tests.scaleout.settings``."""

    name = "tests.scaleout"
    label = "scaleout_probe"

    def ready(self) -> None:
        for name, signal in PROBED.items():

            def receiver(sender: Any, payment: Any, _name: str = name, **kwargs: Any) -> None:
                _append(_name, payment.identifier)

            signal.connect(receiver, weak=False, dispatch_uid=f"scaleout-probe-{name}")
