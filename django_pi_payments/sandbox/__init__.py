"""A stateful simulator of the Pi Platform API (``/v2``) and Horizon, on the standard library.

Runs without Django configured and without third-party packages; ``stellar-sdk`` is only used,
when installed, to decode envelopes posted to ``POST /horizon/transactions``::

    from django_pi_payments.sandbox import SandboxServer

    with SandboxServer() as sandbox:  # http://127.0.0.1:<free port>
        ...  # Platform API at sandbox.url + "/v2", Horizon at sandbox.horizon_url

or from a shell: ``python -m django_pi_payments.sandbox --port 8765``.

Modules: :mod:`.server` (HTTP), :mod:`.access` (the origins and host names it answers),
:mod:`.routes` (route table), :mod:`.api` and :mod:`.control` (handlers), :mod:`.payments`
(payment rules), :mod:`.horizon`, :mod:`.state` (data, lock, persistence), :mod:`.models`,
:mod:`.faults`, :mod:`.traffic` (call log), :mod:`.errors` (error codes and statuses, including
the simulator-specific choices), :mod:`.ids`, :mod:`.wire` (JSON), :mod:`.cli`, and
:mod:`.handle` (:class:`SandboxHandle`, a client of the control API for tests).
"""

from .cli import add_arguments, build_parser, main
from .handle import SandboxControlError, SandboxHandle
from .models import SandboxConfig
from .server import SandboxServer
from .state import SandboxState

__all__ = [
    "SandboxConfig",
    "SandboxControlError",
    "SandboxHandle",
    "SandboxServer",
    "SandboxState",
    "add_arguments",
    "build_parser",
    "main",
]
