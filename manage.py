#!/usr/bin/env python
"""Django's command-line utility for Phalanx."""

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "exchange.settings")
    from django.core.management import execute_from_command_line

    from members.audit import set_process_channel

    # Privileged actions of commands (create_token, activation...) are audited as such.
    set_process_channel("command", agent="manage.py " + " ".join(sys.argv[1:2]))
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
