"""Runs the unmodified bot (`python -m bot`) against the loopback fake of Discord.

Only discord.py's two base addresses are re-pointed, as the launcher's whole job:
every REST call goes through `Route.BASE`, and a plain Client connects to
`DiscordWebSocket.DEFAULT_GATEWAY` without asking REST for it.
"""

import os
import runpy
import sys

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

url = os.environ["FAKE_DISCORD_URL"]
Route.BASE = f"{url}/api/v10"
DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(url.replace("http", "ws", 1) + "/gateway")
sys.argv = ["bot", *sys.argv[1:]]
runpy.run_module("bot", run_name="__main__", alter_sys=True)
