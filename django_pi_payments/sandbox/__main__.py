"""``python -m django_pi_payments.sandbox``: run the simulator until Ctrl-C or SIGTERM."""

from .cli import main

raise SystemExit(main())
