"""Imports flow one way: the core and the store know nothing of Discord, and a CLI
answer printed as text does not load discord.py (a third of a cached start)."""

import subprocess
import sys

DISCORD_MODULES = 'sorted(name for name in sys.modules if name.split(".")[0] == "discord")'

IMPORT_EVERY_MODULE = f"""
import importlib, pkgutil, sys
import bot.core, bot.store
for package in (bot.core, bot.store):
    for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
        importlib.import_module(module.name)
print({DISCORD_MODULES})
"""

ASK_AS_TEXT = f"""
import sys
from bot.cli import main
main(["ask", "who directed it"])
print({DISCORD_MODULES}, file=sys.stderr)
"""


def _run(code: str) -> subprocess.CompletedProcess[str]:
    # A fresh interpreter: this test process has discord.py loaded by other tests.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result


def test_the_core_and_the_store_import_nothing_from_discord():
    assert _run(IMPORT_EVERY_MODULE).stdout.strip() == "[]"


def test_a_text_answer_on_the_command_line_does_not_load_discord_py():
    result = _run(ASK_AS_TEXT)
    assert "Kiyotaka Oshiyama" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "[]"
