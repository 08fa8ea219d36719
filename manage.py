#!/usr/bin/env python
"""Django's command-line utility for qmtjq."""

import os
import sys


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qmtjq.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        # First start on a fresh machine: give this installation its own
        # random SECRET_KEY in .env before settings demand one.
        from qmtjq.bootstrap import ensure_secret_key

        ensure_secret_key()
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
