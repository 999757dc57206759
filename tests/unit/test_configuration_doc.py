"""docs/configuration.md lists every settings key with its environment variable and default."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel

from bridge.runtime.settings import ENV_PREFIX, Settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def _keys() -> list[str]:
    keys: list[str] = []
    for section, field in Settings.model_fields.items():
        model = field.annotation
        assert isinstance(model, type)
        assert issubclass(model, BaseModel)
        keys.extend(f"{section}.{name}" for name in model.model_fields)
    return keys


def test_every_key_is_documented_with_its_env_variable() -> None:
    row = re.compile(r"^\| `([a-z0-9_.]+)` \| [^|]* \| `([A-Z0-9_]+)` \|", re.M)
    rows = {m.group(1): m.group(2) for m in row.finditer(DOC.read_text())}
    keys = _keys()
    assert len(keys) > 40
    missing = [k for k in keys if k not in rows]
    assert missing == [], f"undocumented keys: {missing}"
    for key in keys:
        assert rows[key] == ENV_PREFIX + key.upper().replace(".", "__")


def test_no_documented_key_is_unknown() -> None:
    documented = set(re.findall(r"^\| `([a-z_]+\.[a-z0-9_.]+)` \|", DOC.read_text(), re.M))
    assert documented - set(_keys()) == set()
