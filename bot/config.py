"""Settings, read once from the environment (and `.env`) and validated."""

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

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
class StoreSettings:
    """Where members' settings and the feedback are kept (the CLI needs no token for it)."""

    db_path: Path  # SQLite, the default
    database_url: str | None  # postgresql://…: PostgreSQL instead
    feedback_days: int  # how long questions and votes are kept; 0 records none

    @property
    def where(self) -> str:
        """For logs and messages: the file, or the server without its password."""
        return redact_url(self.database_url) if self.database_url else str(self.db_path)


@dataclass(frozen=True)
class Shards:
    count: int
    ids: tuple[int, ...]  # the shards this process runs


@dataclass(frozen=True)
class Settings:
    token: str
    guild_id: int | None
    proxy: str | None
    corpus_dir: Path
    cache_dir: Path
    store: StoreSettings
    shards: Shards | None  # None: one process, no sharding
    semantic: bool  # hybrid retrieval (RETRIEVAL=lexical turns the model off)


def corpus_dir(override: str | None = None, env: Mapping[str, str] = os.environ) -> Path:
    """--corpus beats CORPUS_DIR beats the shipped corpus."""
    return Path(override or env.get("CORPUS_DIR") or DEFAULT_CORPUS)


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where built indexes are kept (INDEX_CACHE_DIR); safe to delete at any time."""
    return Path(env.get("INDEX_CACHE_DIR") or DEFAULT_CACHE)


def semantic(env: Mapping[str, str] = os.environ) -> bool:
    """RETRIEVAL=hybrid (the default) or lexical (BM25 alone: no model is loaded)."""
    mode = env.get("RETRIEVAL", "").strip().lower() or "hybrid"
    if mode not in ("hybrid", "lexical"):
        raise ConfigError(f"RETRIEVAL must be hybrid or lexical, not {mode!r}")
    return mode == "hybrid"


def redact_url(url: str) -> str:
    """A database URL with its password replaced, for logs (user:password@ and, as libpq
    also reads it, ?password=)."""
    url = re.sub(r"(://[^/@:]*):[^/@]*@", r"\1:***@", url)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", url, flags=re.IGNORECASE)


def url_password(url: str) -> str | None:
    """The password a database URL carries, in either form, to keep it out of logs."""
    parts = urlsplit(url)
    given = parse_qs(parts.query).get("password")
    return parts.password or (given[0] if given else None)


def load_env(env_file: Path | None = None) -> None:
    """`.env` fills in what the environment does not set."""
    load_dotenv(env_file or Path.cwd() / ".env", override=False)


def store_settings(env: Mapping[str, str] = os.environ) -> StoreSettings:
    path = env.get("DATABASE_PATH", "").strip()
    url = env.get("DATABASE_URL", "").strip() or None
    if url and path:
        raise ConfigError(
            "DATABASE_PATH and DATABASE_URL are both set: keep DATABASE_URL for PostgreSQL "
            "or DATABASE_PATH for a SQLite file, not both"
        )
    if url and not re.match(r"postgres(ql)?://", url):
        raise ConfigError(
            f"DATABASE_URL must be a PostgreSQL URL (postgresql://user:password@host/db), "
            f"not {redact_url(url).split('://')[0]}://…"
        )
    return StoreSettings(
        db_path=Path(path or DEFAULT_DB),
        database_url=url,
        feedback_days=_int(env, "FEEDBACK_DAYS", 90, 0, 3650),
    )


def shards(env: Mapping[str, str] = os.environ) -> Shards | None:
    """SHARD_COUNT (all shards here) and SHARD_IDS ("0,2" or "0-3": this process's)."""
    ids_text = env.get("SHARD_IDS", "").strip()
    if not env.get("SHARD_COUNT", "").strip():
        if ids_text:
            raise ConfigError("SHARD_IDS needs SHARD_COUNT (the total number of shards)")
        return None
    count = _int(env, "SHARD_COUNT", 1, 1, 10_000)
    if not ids_text:
        return Shards(count, tuple(range(count)))
    ids: list[int] = []
    for part in ids_text.split(","):
        match = re.fullmatch(r"\s*([0-9]+)\s*(?:-\s*([0-9]+)\s*)?", part)
        if not match:
            raise ConfigError(f"SHARD_IDS must look like 0,2 or 0-3, not {ids_text!r}")
        first, last = int(match[1]), int(match[2] or match[1])
        if last >= count or first > last:
            raise ConfigError(f"SHARD_IDS {ids_text!r}: each shard must be below {count}")
        ids += range(first, last + 1)
    if len(set(ids)) != len(ids):  # each range was checked against count above
        raise ConfigError(
            f"SHARD_IDS {ids_text!r} must name each shard once, each below SHARD_COUNT={count}"
        )
    return Shards(count, tuple(sorted(ids)))


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    if not (text.isascii() and text.isdigit()) or not low <= int(text) <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, not {text!r}")
    return int(text)


def load_settings(env_file: Path | None = None) -> Settings:
    """The bot's settings; `.env` fills in only what the environment does not set."""
    load_env(env_file)
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
    if guild and not (guild.isascii() and guild.isdigit()):
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
        cache_dir=cache_dir(env),
        store=store_settings(env),
        shards=shards(env),
        semantic=semantic(env),
    )
