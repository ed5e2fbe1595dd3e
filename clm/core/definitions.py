"""Reading the definitions users write as files (stage models, loyalty programmes, journeys,
message templates): YAML, or JSON by the `.json` suffix; an unreadable file is UnusableInput."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from clm.core.errors import UnusableInput


def read_definition(path: Path) -> Any:
    if not path.is_file():
        raise UnusableInput(f"no such file: {path}")
    try:
        text = path.read_text("utf-8")
        return json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
    except (OSError, UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise UnusableInput(f"{path}: not valid YAML/JSON: {str(exc).splitlines()[0]}")
