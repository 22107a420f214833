"""Imports flow one way: the core and the store know nothing of Discord."""

import subprocess
import sys

IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import bot.core, bot.store
for package in (bot.core, bot.store):
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")
print(sorted(name for name in sys.modules if name.split(".")[0] == "discord"))
"""


def test_the_core_and_the_store_import_nothing_from_discord():
    # A fresh interpreter: this test process has discord.py loaded by other tests.
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERY_MODULE], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
