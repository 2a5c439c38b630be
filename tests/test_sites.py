"""Site profiles (nodes/*.toml): loaded with errors naming the file and key; a node naming
an unknown site is refused with a 422 on ``site`` listing the known ones.

Unit tests, plus one real gateway refusing registrations (no node process is needed: a
registration is one HTTP call).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from colabhive.dispatch.node_registry import NodeRecord
from colabhive.errors import ConfigError, InvalidInput
from colabhive.gateway.sites import load_sites, site_for
from colabhive.wire import SiteProfile
from hivectl import ROOT, HiveProcess

GOOD = 'name = "{name}"\nregion = "somewhere"\ncarbon_g_per_kwh = 120\nprice_per_gpu_hour = 1.5\n'


def _site(d: Path, name: str, text: str | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    p = d / f"{name}.toml"
    p.write_text(GOOD.format(name=name) if text is None else text)
    return p


def test_the_repository_profiles_load() -> None:
    sites = load_sites([ROOT / "nodes"])
    assert {"local", "lima", "cordoba"} <= set(sites)
    assert sites["lima"].carbon_g_per_kwh == 231 and sites["cordoba"].carbon_g_per_kwh == 354
    assert all(s.price_per_gpu_hour >= 0 for s in sites.values())


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('name = "x"\ncarbon_g_per_kwh = "lots"\n', "carbon_g_per_kwh"),
        ('name = "x"\ncarbon_g_per_kwh = -3\n', "carbon_g_per_kwh"),
        ('name = "x"\n', "carbon_g_per_kwh"),
        ('name = "x"\ncarbon_g_per_kwh = 100\ncolour = "green"\n', "colour"),
        ('name = "x"\ncarbon_g_per_kwh = 100\nprice_per_gpu_hour = -1\n', "price_per_gpu_hour"),
        ('name = "y"\ncarbon_g_per_kwh = 100\n', "name"),
        ('name = "x"\ncarbon_g_per_kwh = [100\n', "not valid TOML"),
    ],
)
def test_a_bad_profile_is_a_config_error_naming_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    path = _site(tmp_path, "x", text)
    with pytest.raises(ConfigError) as info:
        load_sites([tmp_path])
    assert str(path) in str(info.value) and key in str(info.value)


def test_every_problem_is_reported_at_once_and_duplicates_too(tmp_path: Path) -> None:
    _site(tmp_path / "a", "dup")
    second = _site(tmp_path / "b", "dup")
    bad = _site(tmp_path / "b", "bad", 'name = "bad"\n')
    with pytest.raises(ConfigError) as info:
        load_sites([tmp_path / "a", tmp_path / "b"])
    assert str(second) in str(info.value) and "also defined" in str(info.value)
    assert str(bad) in str(info.value)


def test_a_missing_directory_means_no_profiles(tmp_path: Path) -> None:
    assert load_sites([tmp_path / "absent"]) == {}


def test_unknown_sites_are_refused_only_where_profiles_exist() -> None:
    sites = load_sites([ROOT / "nodes"])
    assert site_for(sites, "lima") is sites["lima"]
    with pytest.raises(InvalidInput) as info:
        site_for(sites, "atlantis")
    assert info.value.field == "site" and "'lima'" in info.value.message and "'local'" in info.value.message
    assert site_for({}, "atlantis") is None  # a hive with no profiles checks nothing


def test_carbon_is_energy_times_the_sites_intensity() -> None:
    rec = NodeRecord(id="n", name="n", site="lima", host="h", devices=[],
                     site_profile=SiteProfile(name="lima", carbon_g_per_kwh=231))
    assert rec.carbon_g(3.6e6) == pytest.approx(231.0)  # one kWh
    assert rec.carbon_g(None) is None
    assert NodeRecord(id="m", name="m", site="x", host="h", devices=[]).carbon_g(10.0) is None


def test_the_gateway_refuses_an_unknown_site_and_fails_on_a_bad_profile(tmp_path: Path) -> None:
    h = HiveProcess(tmp_path / "ok", site_dirs=[ROOT / "nodes"])
    bad_dir = tmp_path / "bad-sites"
    bad = _site(bad_dir, "x", 'name = "x"\ncarbon_g_per_kwh = "lots"\n')
    broken = HiveProcess(tmp_path / "broken", site_dirs=[bad_dir])
    try:
        h.start_gateway()
        r = httpx.post(f"{h.url}/v1/nodes/register", json={"name": "n", "site": "atlantis"})
        assert r.status_code == 422, r.text
        err = r.json()["error"]
        assert err["field"] == "site" and "cordoba" in err["message"] and "atlantis" in err["message"]
        assert httpx.post(f"{h.url}/v1/nodes/register", json={"name": "n", "site": "cordoba"}).status_code == 200
        nodes = h.get_json("/v1/nodes")["nodes"]
        assert [n["site_profile"]["name"] for n in nodes] == ["cordoba"]
        broken.start_gateway(wait=False)
        assert broken.gateway is not None
        broken.gateway.wait(60)
        assert broken.gateway.returncode != 0
        log = broken.log("gateway")
        assert str(bad) in log and "carbon_g_per_kwh" in log
    finally:
        h.stop()
        broken.stop()


def test_a_node_at_an_unknown_site_exits_with_the_reason(tmp_path: Path) -> None:
    h = HiveProcess(tmp_path, site_dirs=[ROOT / "nodes"])
    try:
        h.start_gateway()
        h.start_node("lost", "--site", "atlantis", "--functions", "echo")
        h.nodes["lost"].wait(60)
        assert h.nodes["lost"].returncode == 2  # a configuration error, not a crash or a retry loop
        assert "unknown site 'atlantis'" in h.log("lost") and "lima" in h.log("lost")
    finally:
        h.stop()
