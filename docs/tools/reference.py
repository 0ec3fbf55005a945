"""Build the API reference (HTML, with pdoc) and the CLI reference (docs/cli.md).

    python docs/tools/reference.py --out docs/_build/api   # both; fails on any warning
    python docs/tools/reference.py --check                 # CI: docs/cli.md is current, no
                                                           # public item lacks a docstring

Every importable module under ``predis`` is documented except the compiled ``_core`` (its
public surface is documented where it is wrapped: ``predis.Cache``, ``predis.prefetch``).
Warnings are errors: a docstring pdoc cannot render, an annotation it cannot resolve or a
public class, function or method with no docstring fails the build.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import pkgutil
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.extract

import predis
from predis.cli import _parser

DOCS = Path(__file__).resolve().parent.parent
CLI_MD = DOCS / "cli.md"


def public_modules() -> list[str]:
    """Every module of the installed ``predis`` package, the native core excepted."""
    names = ["predis"]
    for info in pkgutil.walk_packages(predis.__path__, prefix="predis."):
        if info.name.split(".")[-1].startswith("_"):
            continue
        names.append(info.name)
    return sorted(names)


def _undocumented(modules: list[str]) -> list[str]:
    """Public classes, functions and methods without a docstring of their own."""
    missing = []
    for name in modules:
        module = importlib.import_module(name)
        exported = getattr(module, "__all__", None)
        for attr, obj in vars(module).items():
            if attr.startswith("_") or (exported is not None and attr not in exported):
                continue
            if getattr(obj, "__module__", None) != name:
                continue  # documented where it is defined
            if (inspect.isclass(obj) or inspect.isfunction(obj)) and not inspect.getdoc(obj):
                missing.append(f"{name}.{attr}")
            if inspect.isclass(obj):
                for meth, fn in vars(obj).items():
                    if meth.startswith("_") or not inspect.isfunction(fn):
                        continue
                    if fn.__doc__ is None and not _inherits_doc(obj, meth):
                        missing.append(f"{name}.{attr}.{meth}")
    return missing


def _inherits_doc(cls: type, meth: str) -> bool:
    return any(getattr(getattr(base, meth, None), "__doc__", None) for base in cls.__mro__[1:])


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse offers no public walk of its tree
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _help_of(parser: argparse.ArgumentParser, name: str) -> str:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for choice in action._choices_actions:
                if choice.dest == name:
                    return choice.help or ""
    return ""


def cli_markdown() -> str:
    """The CLI reference: every command's usage and options, from the parser itself."""
    root = _parser()
    lines = [
        "# Command-line reference",
        "",
        "Generated from the argument parser by `python docs/tools/reference.py`; CI fails",
        "when this file and the parser disagree. Every command also answers `--help`.",
        "",
    ]

    def walk(parser: argparse.ArgumentParser, path: list[str], summary: str) -> None:
        subs = _subparsers(parser)
        if path:
            lines.append(f"{'#' * min(len(path) + 1, 4)} `{' '.join(['predis', *path])}`")
            lines.append("")
            if summary:
                lines.extend([summary[0].upper() + summary[1:] + ".", ""])
            if not subs:
                parser.prog = " ".join(["predis", *path])
                lines.extend(["```text", parser.format_help().rstrip(), "```", ""])
        for name, child in subs.items():
            walk(child, [*path, name], _help_of(parser, name))

    walk(root, [], "")
    return "\n".join(lines)


def build_html(out: Path, modules: list[str]) -> None:
    """Render the modules to HTML with pdoc; any warning is an error."""
    # pdoc walks a package's submodules itself unless the package's __all__ leaves them
    # out; name only those it would not reach, since naming one twice is a warning.
    specs: list[str] = []
    for name in modules:
        if name not in pdoc.extract.walk_specs(specs or [name]) or not specs:
            specs.append(name)
    pdoc.render.configure(docformat="google", show_source=False)
    pdoc.pdoc(*specs, output_directory=out)


def main(argv: list[str] | None = None) -> int:
    """Entry point: see the module docstring."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, help="write the HTML reference here")
    ap.add_argument("--check", action="store_true", help="verify docs/cli.md and docstrings")
    args = ap.parse_args(argv)
    warnings.simplefilter("error")
    # Third-party libraries' deprecation notices at import (click via flwr) are theirs to fix;
    # pdoc's own warnings and Predis's stay errors.
    for category in (DeprecationWarning, PendingDeprecationWarning):
        warnings.filterwarnings("ignore", category=category, module=r"(?!predis)")
    modules = public_modules()
    missing = _undocumented(modules)
    if missing:
        print("public items without a docstring:\n  " + "\n  ".join(missing), file=sys.stderr)
        return 1
    text = cli_markdown()
    if args.check:
        if not CLI_MD.exists() or CLI_MD.read_text(encoding="utf-8") != text:
            print(f"{CLI_MD} is out of date: run python docs/tools/reference.py", file=sys.stderr)
            return 1
    else:
        CLI_MD.write_text(text, encoding="utf-8")
    if args.out is not None:
        build_html(args.out, modules)
        print(f"API reference for {len(modules)} modules in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
