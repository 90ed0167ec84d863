#!/usr/bin/env python
import importlib
import os
import sys

# Commands that only read files and print statistics: they need no app registry, models or
# database, so they run without django.setup() (loading every app's models, admin and Celery
# costs about a quarter of a second of each run). Their modules must import no models.
FILE_COMMANDS = {"mrmc": "analysis.management.commands.mrmc"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    if len(sys.argv) > 1 and sys.argv[1] in FILE_COMMANDS:
        command = importlib.import_module(FILE_COMMANDS[sys.argv[1]]).Command()
        command.run_from_argv(sys.argv)
        return
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
