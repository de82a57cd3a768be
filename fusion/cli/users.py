"""``fusion users``: who may log in to a shared Fusion Explorer, and as what (see :mod:`storage.users`).

The password is read from the terminal without echo, or from standard input with ``--password-stdin`` (for
scripts); never from the command line, where it would sit in the shell history and the process list.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from fusion.cli.options import EXIT_FAILED, EXIT_OK, CliError, eprint


def _password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    if not sys.stdin.isatty():
        raise CliError("No terminal to ask for the password on: pass --password-stdin and pipe it in.")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("Again: ") != first:
        raise CliError("The two passwords differ; nothing was changed.")
    return first


def cmd_users(args: argparse.Namespace) -> int:
    from storage.users import add_user, list_users, remove_user, users_file

    path = users_file()
    if args.action == "add":
        user = add_user(path, args.name, args.role, _password(args))
        eprint(f"{user.name} can now log in as {user.role} (users file: {path}).")
        return EXIT_OK
    if args.action == "remove":
        if remove_user(path, args.name):
            eprint(f"{args.name} was removed; their open sessions end on their next click.")
            return EXIT_OK
        eprint(f"There is no user {args.name!r} in {path}.")
        return EXIT_FAILED
    users = list_users(path)
    for user in users:
        print(f"{user.name}\t{user.role}")
    eprint(f"{len(users)} in {path}" if users else f"No users in {path}: the app needs no login on 127.0.0.1.")
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser("users", help="who may log in to a shared app (built-in login), and their roles")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser("add", help="add a user, or change one's role and password")
    add.add_argument("name")
    add.add_argument("--role", choices=["annotator", "admin"], default="annotator")
    add.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    rm = actions.add_parser("remove", help="remove a user")
    rm.add_argument("name")
    actions.add_parser("list", help="list users and roles")
    p.set_defaults(func=cmd_users)
