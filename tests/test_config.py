from __future__ import annotations

import pytest

from fahr.core import config


@pytest.mark.parametrize("profile", ["smoke", "demo", "paper"])
def test_every_profile_loads_into_a_typed_config(profile: str) -> None:
    cfg = config.load(profile)
    assert cfg.profile == profile
    assert isinstance(cfg.seed, int)
    assert len(cfg.hash) == 12


def test_available_profiles_are_the_three_of_the_design() -> None:
    assert config.available_profiles() == ["demo", "paper", "smoke"]


def test_override_changes_the_value_and_the_hash() -> None:
    base = config.load("smoke")
    changed = config.load("smoke", ["seed=7"])
    assert changed.seed == 7
    assert changed.hash != base.hash
    assert config.load("smoke", {"seed": base.seed}).hash == base.hash


def test_hash_ignores_key_order_but_not_values() -> None:
    assert config.config_hash({"a": 1, "b": 2}) == config.config_hash({"b": 2, "a": 1})
    assert config.config_hash({"a": 1, "b": 2}) != config.config_hash({"a": 1, "b": 3})


def test_override_values_are_parsed_as_yaml() -> None:
    assert config.parse_override("seed=3") == ("seed", 3)
    assert config.parse_override("device=cpu") == ("device", "cpu")
    assert config.parse_override("a.b=[1, 2]") == ("a.b", [1, 2])
    assert config.normalise_overrides("seed=3, num_workers=2") == {"seed": 3, "num_workers": 2}


def test_unknown_key_is_an_error_that_names_it_and_suggests() -> None:
    with pytest.raises(config.ConfigError, match=r"unknown key 'sed'.*did you mean 'seed'"):
        config.load("smoke", ["sed=1"])


def test_wrong_type_is_an_error_not_a_coercion() -> None:
    with pytest.raises(config.ConfigError, match=r"seed: .*int.*'three'"):
        config.load("smoke", ["seed=three"])
    with pytest.raises(config.ConfigError, match=r"seed"):
        config.load("smoke", {"seed": "3"})  # a string that looks like an int is still a string
    with pytest.raises(config.ConfigError, match=r"device"):
        config.load("smoke", ["device=tpu"])


def test_malformed_override_and_unknown_profile_are_errors() -> None:
    with pytest.raises(config.ConfigError, match="key=value"):
        config.load("smoke", ["seed"])
    with pytest.raises(config.ConfigError, match="unknown profile 'huge'"):
        config.load("huge")
    with pytest.raises(config.ConfigError, match="--profile"):
        config.load("smoke", ["profile=demo"])


def test_profile_file_with_a_missing_or_extra_key_is_rejected(tmp_path, monkeypatch) -> None:
    from fahr.core import paths

    monkeypatch.setattr(paths, "CONFIGS", tmp_path)
    (tmp_path / "broken.yaml").write_text("profile: broken\nseed: 0\n")
    with pytest.raises(config.ConfigError, match=r"broken.yaml.*\n.*device: Field required"):
        config.load("broken")
    good = (paths.REPO / "configs" / "smoke.yaml").read_text().replace("smoke", "extra")
    (tmp_path / "extra.yaml").write_text(good + "surprise: 1\n")
    with pytest.raises(config.ConfigError, match="surprise"):
        config.load("extra")


def test_config_is_frozen() -> None:
    cfg = config.load("smoke")
    with pytest.raises(Exception, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]
