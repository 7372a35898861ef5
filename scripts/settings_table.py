"""Print the README's settings table from the settings classes themselves (so it cannot drift).

uv run python scripts/settings_table.py           # print the table
uv run python scripts/settings_table.py --write   # replace the table between the markers in README.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import AliasChoices, SecretStr
from pydantic.fields import FieldInfo

from isseimail_shared.settings import ServiceSettings
from isseimail_testing.services import packages

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- settings-table:start -->", "<!-- settings-table:end -->"


def env_name(name: str, info: FieldInfo) -> str:
    alias = info.validation_alias
    if isinstance(alias, AliasChoices):
        first = alias.choices[0]
        if isinstance(first, str):
            return first
    if isinstance(alias, str):
        return alias
    return f"ISSEIMAIL_{name.upper()}"


def default_text(info: FieldInfo) -> str:
    if info.is_required():
        return "(required)"
    factory = info.default_factory
    value = factory() if factory is not None else info.default  # type: ignore[call-arg]
    if isinstance(value, SecretStr):
        raw = value.get_secret_value()
        return "(generated at start)" if info.default_factory is not None else f"`{raw}`" if raw else "(empty)"
    if value is None or value == []:
        return "(empty)"
    if isinstance(value, list):
        return "`" + ",".join(str(v) for v in value) + "`"
    return f"`{value}`"


def rows() -> list[tuple[str, str, str, str]]:
    found: dict[str, tuple[list[str], str, str]] = {}
    for entry in packages():  # one settings class per service package (services.toml)
        service = entry.name
        cls: type[ServiceSettings] = entry.settings_class()
        for name, info in cls.model_fields.items():
            env = env_name(name, info)
            shared = name in ServiceSettings.model_fields
            services, default, text = found.get(env, ([], default_text(info), info.description or ""))
            services.append("all" if shared else service)
            found[env] = (services, default, text)
    table = []
    for env, (services, default, text) in sorted(found.items()):
        who = "all services" if "all" in services else ", ".join(dict.fromkeys(services))
        table.append((env, who, default, text.replace("|", "\\|")))
    return table


def render() -> str:
    lines = ["| variable | used by | default | meaning |", "|---|---|---|---|"]
    lines += [f"| `{env}` | {who} | {default} | {text} |" for env, who, default, text in rows()]
    return "\n".join(lines)


def main() -> None:
    table = render()
    if "--write" not in sys.argv:
        print(table)
        return
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    readme.write_text(f"{head}{START}\n{table}\n{END}{tail}")


if __name__ == "__main__":
    main()
