"""The per-layer simulation cache: stored results come back, missing or damaged ones are simulated."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetune.simulate._cache import cache_root, cached_layers, layer_key


def _key(channels: int, rows: int = 32) -> str:
    return layer_key("fake", "1.0", {"channels": channels}, {"rows": rows})


def test_only_layers_missing_from_the_cache_are_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path))
    asked: list[list[int]] = []

    def simulate(missing: list[int]) -> list[dict]:
        asked.append(missing)
        return [{"cycles": 100.0 + i} for i in missing]

    first, hits = cached_layers("fake", [_key(8), _key(16)], simulate)
    assert first == [{"cycles": 100.0}, {"cycles": 101.0}] and hits == 0
    second, hits = cached_layers("fake", [_key(32), _key(16), _key(8)], simulate)
    assert asked == [[0, 1], [0]] and hits == 2
    assert second == [{"cycles": 100.0}, {"cycles": 101.0}, {"cycles": 100.0}]


def test_the_key_covers_the_hardware_and_the_version() -> None:
    assert len({_key(8), _key(8, rows=64), layer_key("fake", "1.1", {"channels": 8}, {"rows": 32})}) == 3


def test_a_damaged_entry_is_simulated_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EDGETUNE_CACHE", str(tmp_path))
    cached_layers("fake", [_key(8)], lambda missing: [{"cycles": 1.0}])
    [entry] = (cache_root() / "layers" / "fake").rglob("*.json")
    entry.write_text("{not json")
    rows, hits = cached_layers("fake", [_key(8)], lambda missing: [{"cycles": 2.0}])
    assert rows == [{"cycles": 2.0}] and hits == 0
    assert cached_layers("fake", [_key(8)], lambda missing: [])[0] == [{"cycles": 2.0}]
