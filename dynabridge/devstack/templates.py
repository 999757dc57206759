"""Render the local stack's config templates (deploy/local/*.tmpl): pure text in, text out."""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from pathlib import Path

from dynabridge.devstack.config import ConfigError


def rendered(text: str, values: Mapping[str, object], source: str = "<template>") -> str:
    """Substitute ``${NAME}``; a placeholder without a value is an error naming it."""
    try:
        return string.Template(text).substitute({k: str(v) for k, v in values.items()})
    except KeyError as exc:
        raise ConfigError(f"{source}: no value for placeholder ${{{exc.args[0]}}}") from None
    except ValueError as exc:
        raise ConfigError(f"{source}: malformed placeholder ({exc})") from None


def render(template: Path, target: Path, values: Mapping[str, object]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(rendered(template.read_text(), values, str(template)))


def relocated_jvm_options(text: str, state_dir: Path) -> str:
    """Point the distribution's relative GC-log, error-file and heap-dump paths into ``state_dir``.

    OpenSearch's jvm.options says ``file=logs/gc.log``, resolved against the (root-owned,
    read-only) distribution home after its start script ``cd``s there: the service user
    cannot write it and the JVM refuses to start.
    """
    text = re.sub(r"(?m)([=:])logs/", lambda m: f"{m.group(1)}{state_dir}/logs/", text)
    return re.sub(r"(?m)^(-XX:HeapDumpPath=)data$", lambda m: f"{m.group(1)}{state_dir}/data", text)
