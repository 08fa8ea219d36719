#!/usr/bin/env python
"""Django's command-line utility for qmtjq."""

import os
import secrets
import sys

# Commands that neither serve nor sign anything (the migration check CI and
# hooks run, message catalogs) get a throwaway key for this process only: it
# is never written anywhere, and every other command still demands a real one.
KEYLESS_COMMANDS = {"makemigrations", "makemessages", "compilemessages"}


def main():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "qmtjq.settings")
    if len(sys.argv) > 1 and sys.argv[1] == "serve":
        # First start on a fresh machine: give this installation its own
        # random SECRET_KEY in .env before settings demand one.
        from qmtjq.bootstrap import ensure_secret_key

        ensure_secret_key()
    elif len(sys.argv) > 1 and sys.argv[1] in KEYLESS_COMMANDS:
        os.environ.setdefault("SECRET_KEY", secrets.token_urlsafe(50))
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
