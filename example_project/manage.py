#!/usr/bin/env python
"""Django's command-line utility for the example shop (settings: ``config.settings``)."""

import os
import sys


def main() -> None:
    """Run a management command of the example shop."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
