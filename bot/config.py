"""Settings, read once from the environment (and `.env`) and validated."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from dotenv import load_dotenv

CHECKOUT = Path(__file__).resolve().parent.parent
# Run from a checkout (an editable install), the corpus and the bot's files live beside
# the code. A copy installed into site-packages has neither, so it uses the folder it
# runs in, where `.env` is read from too.
PROJECT_ROOT = CHECKOUT if (CHECKOUT / "pyproject.toml").is_file() else Path.cwd()
DEFAULT_CORPUS = PROJECT_ROOT / "corpus"
DEFAULT_DB = PROJECT_ROOT / "lookback.sqlite3"
DEFAULT_CACHE = PROJECT_ROOT / ".cache"

TOKEN_HELP = """\
No Discord bot token found. To run the bot:
  1. Open https://discord.com/developers/applications, create an application,
     and under "Bot" press "Reset Token" to get its token.
  2. Copy .env.example to .env and put the token after DISCORD_TOKEN=
     (and your test server's id after DISCORD_GUILD_ID= to see commands at once).
  3. Run `python -m bot` again.
To ask questions without Discord, use: python -m bot ask "Who directed Look Back?\""""


# What Discord's tokens are made of (base64url pieces joined by dots).
_TOKEN = re.compile(r"[A-Za-z0-9_\-.]+")


class ConfigError(Exception):
    """A setting is missing or malformed; the message says how to fix it."""


@dataclass(frozen=True)
class Settings:
    token: str
    guild_id: int | None
    proxy: str | None
    corpus_dir: Path
    db_path: Path
    cache_dir: Path


def corpus_dir(override: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """--corpus beats CORPUS_DIR beats the shipped corpus."""
    return Path(override or env.get("CORPUS_DIR") or DEFAULT_CORPUS)


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where built indexes are kept (INDEX_CACHE_DIR); safe to delete at any time."""
    return Path(env.get("INDEX_CACHE_DIR") or DEFAULT_CACHE)


def load_settings(env_file: Path | None = None) -> Settings:
    """The bot's settings; `.env` fills in only what the environment does not set."""
    load_dotenv(env_file or Path.cwd() / ".env", override=False)
    env = os.environ
    token = env.get("DISCORD_TOKEN", "").strip()
    if not token:
        raise ConfigError(TOKEN_HELP)
    if not _TOKEN.fullmatch(token):
        raise ConfigError(
            "DISCORD_TOKEN holds characters a bot token cannot have (a line break, a space, "
            "quotes or the like). Copy the token again from the Developer Portal (Bot, "
            "Reset Token) and put it on one line in .env: DISCORD_TOKEN=the.token.itself"
        )
    guild = env.get("DISCORD_GUILD_ID", "").strip()
    if guild and not guild.isdigit():
        raise ConfigError(
            f"DISCORD_GUILD_ID must be a server id (digits only), not {guild!r}; "
            "enable Developer Mode in Discord and use 'Copy Server ID'."
        )
    proxy = env.get("DISCORD_PROXY", "").strip() or None
    if proxy and not re.fullmatch(r"https?://[^\s/]+(:\d+)?/?", proxy):
        raise ConfigError("DISCORD_PROXY must look like http://host:port (or https://…)")
    return Settings(
        token=token,
        guild_id=int(guild) if guild else None,
        proxy=proxy,
        corpus_dir=corpus_dir(env=env),
        db_path=Path(env.get("DATABASE_PATH") or DEFAULT_DB),
        cache_dir=cache_dir(env),
    )
