"""`scribe templates` lists the prompt templates; `scribe templates show NAME` prints one."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("templates", help="list templates, or show one")
    parser.add_argument("action", nargs="?", choices=["list", "show"], default="list")
    parser.add_argument("name", nargs="?", help="the template to show")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from scribe.engine import paths
    from scribe.engine.errors import InputError
    from scribe.engine.prompting.templates import get_template, list_templates

    console = Console()
    if args.action == "show":
        if not args.name:
            raise InputError("which template? e.g. scribe templates show summarize")
        template = get_template(args.name)
        print(f"# {template.name}: {template.description}")
        print(f"# from {template.source}")
        print(template.source.read_text(encoding="utf-8"), end="")
        return 0
    table = Table("name", "description", "variables", "source")
    for template in list_templates():
        table.add_row(
            template.name,
            template.description,
            " ".join("$" + v for v in template.variables),
            "built-in" if template.builtin else str(template.source),
        )
    console.print(table)
    console.print(f"Add or override templates in {paths.templates_dir()}")
    return 0
