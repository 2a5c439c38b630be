"""Site profiles: where nodes run, and what their energy costs in carbon and money.

A profile is ``<site_dir>/<name>.toml`` (see ``nodes/local.toml``). The gateway reads them
at start, like manifests: every problem in every file is reported at once, naming the file
and the key, and a bad profile stops the gateway instead of silently zeroing a site's
carbon figures.

A node names its site at registration. Once a hive has any profile, a node naming an
unknown site is refused (422 on ``site``, listing the known ones): a misspelt site would
otherwise run with no carbon or price figures and skew every green or cheap routing
decision without anyone noticing. A hive with no profiles at all accepts any site name and
reports no carbon (there is nothing to check it against). Carbon per task is
``NodeRecord.carbon_g``: energy_j / 3.6e6 × carbon_g_per_kwh.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import msgspec

from ..errors import ConfigError, InvalidInput
from ..wire import SiteProfile

__all__ = ["load_sites", "read_site", "site_for"]

log = logging.getLogger("colabhive.gateway")
_AT = re.compile(r" - at `\$\.([^`]+)`")


def _problem(path: Path, exc: msgspec.MsgspecError) -> str:
    """``file: key: message``; msgspec puts the key at the end (`` - at `$.key` ``)."""
    text = str(exc)
    m = _AT.search(text)
    if m:
        return f"{path}: {m.group(1)}: {text[: m.start()]}"
    # unknown and missing fields name the key in the message itself
    return f"{path}: {text}"


def read_site(path: Path) -> tuple[SiteProfile | None, str | None]:
    """One profile, or the problem with it (never both)."""
    try:
        profile = msgspec.toml.decode(path.read_bytes(), type=SiteProfile)
    except OSError as exc:
        return None, f"{path}: cannot read ({exc.strerror})"
    except msgspec.ValidationError as exc:
        return None, _problem(path, exc)
    except msgspec.DecodeError as exc:
        return None, f"{path}: not valid TOML ({exc})"
    if profile.name != path.stem:
        # the file name is how operators find a site (`--site lima` → nodes/lima.toml)
        return None, f"{path}: name: {profile.name!r} must match the file name ({path.stem!r})"
    return profile, None


def load_sites(dirs: list[Path]) -> dict[str, SiteProfile]:
    """Every profile in ``dirs``; raises ConfigError listing every problem in every file.

    A missing directory is skipped with a warning: ``site_dirs`` defaults to ``nodes``, and a
    hive without site profiles is a valid (if carbon-blind) hive.
    """
    sites: dict[str, SiteProfile] = {}
    seen: dict[str, Path] = {}
    problems: list[str] = []
    for d in dirs:
        if not d.is_dir():
            log.warning("site directory %s does not exist; no site profiles from it", d)
            continue
        for path in sorted(d.glob("*.toml")):
            profile, problem = read_site(path)
            if problem is not None:
                problems.append(problem)
                continue
            assert profile is not None
            if profile.name in seen:
                problems.append(f"{path}: name: site {profile.name!r} is also defined in {seen[profile.name]}")
                continue
            seen[profile.name] = path
            sites[profile.name] = profile
    if problems:
        raise ConfigError("invalid site profiles:\n" + "\n".join(f"  {p}" for p in problems))
    return sites


def site_for(sites: dict[str, SiteProfile], name: str) -> SiteProfile | None:
    """The profile a registering node names; 422 on ``site`` when profiles exist and it is not one."""
    if not sites:
        return None
    profile = sites.get(name)
    if profile is None:
        raise InvalidInput(
            f"unknown site {name!r}; this hive knows {sorted(sites)} (site profiles are <site_dir>/<name>.toml)",
            field="site",
        )
    return profile
