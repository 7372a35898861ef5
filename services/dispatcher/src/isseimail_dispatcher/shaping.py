"""Per-domain sending limits: provider presets shipped with the package, operator overrides on top.

Resolution for a recipient domain, first match wins for each field:
ISSEIMAIL_DOMAIN_LIMITS entry for the domain > the provider preset naming the domain > (direct-MX mode)
the preset whose mx_suffixes match one of the domain's MX hosts > the ISSEIMAIL_DOMAIN_* defaults.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

PRESETS_RESOURCE = "shaping_presets.toml"
MAX_PRESET_BYTES = 1024 * 1024


class DomainLimit(BaseModel):
    """Politeness towards one destination domain, for the whole fleet of workers."""

    model_config = ConfigDict(frozen=True)

    connections: int = Field(ge=1, le=1000)
    per_minute: int = Field(ge=1, le=10_000_000)
    messages_per_connection: int | None = Field(default=None, ge=1, le=1_000_000)  # None: no limit


class LimitOverride(BaseModel):
    """An operator's override for one domain: any subset of the fields, the rest comes from the preset."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    connections: int | None = Field(default=None, ge=1, le=1000)
    per_minute: int | None = Field(default=None, ge=1, le=10_000_000)
    messages_per_connection: int | None = Field(default=None, ge=1, le=1_000_000)


def _domain_names(values: list[str]) -> list[str]:
    names = [v.strip().lower().rstrip(".") for v in values]
    for name in names:
        if not name or len(name) > 253 or " " in name or "@" in name:
            raise ValueError(f"not a domain name: {name!r}")
    return names


class ProviderPreset(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    domains: list[str] = Field(min_length=1, max_length=1000)
    mx_suffixes: list[str] = Field(default_factory=list, max_length=100)
    connections: int = Field(ge=1, le=1000)
    messages_per_connection: int | None = Field(default=None, ge=1, le=1_000_000)
    per_minute: int = Field(ge=1, le=10_000_000)

    _check_domains = field_validator("domains", "mx_suffixes")(_domain_names)

    def limit(self) -> DomainLimit:
        return DomainLimit(
            connections=self.connections,
            per_minute=self.per_minute,
            messages_per_connection=self.messages_per_connection,
        )


class PresetFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    providers: dict[str, ProviderPreset] = Field(max_length=1000)

    @model_validator(mode="after")
    def _one_provider_per_domain(self) -> PresetFile:
        seen: dict[str, str] = {}
        for name, preset in self.providers.items():
            for domain in preset.domains:
                if domain in seen:
                    raise ValueError(f"domain {domain} is in both providers {seen[domain]} and {name}")
                seen[domain] = name
        return self


class PresetError(ValueError):
    """The presets file cannot be used; the message names the file and what is wrong."""


def parse_presets(text: str, source: str) -> PresetFile:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PresetError(f"shaping presets {source}: not valid TOML: {exc}") from None
    try:
        return PresetFile.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top level)'}: {e['msg']}" for e in exc.errors()[:10]
        )
        raise PresetError(f"shaping presets {source}: {problems}") from None


def load_presets(path: Path | None = None) -> PresetFile:
    """The operator's file when given, else the one shipped in the package."""
    if path is None:
        text = resources.files("isseimail_dispatcher").joinpath(PRESETS_RESOURCE).read_text(encoding="utf-8")
        return parse_presets(text, f"(built-in {PRESETS_RESOURCE})")
    try:
        if path.stat().st_size > MAX_PRESET_BYTES:
            raise PresetError(f"shaping presets {path}: larger than {MAX_PRESET_BYTES} bytes")
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"shaping presets {path}: cannot read: {exc}") from None
    return parse_presets(text, str(path))


def _suffix_match(host: str, suffix: str) -> bool:
    host = host.lower().rstrip(".")
    return host == suffix or host.endswith("." + suffix)


class Shaping:
    """Resolves the limit of a recipient domain from presets, overrides and defaults."""

    def __init__(self, presets: PresetFile, overrides: Mapping[str, LimitOverride], default: DomainLimit) -> None:
        self._default = default
        self._overrides = {k.lower(): v for k, v in overrides.items()}
        self._by_domain = {d: p for p in presets.providers.values() for d in p.domains}
        self._by_mx = [(s, p) for p in presets.providers.values() for s in p.mx_suffixes]

    def preset_for(self, domain: str, mx_hosts: Iterable[str] = ()) -> ProviderPreset | None:
        found = self._by_domain.get(domain.lower())
        if found is not None:
            return found
        for host in mx_hosts:
            for suffix, preset in self._by_mx:
                if _suffix_match(host, suffix):
                    return preset
        return None

    def limit_for(self, domain: str, mx_hosts: Iterable[str] = ()) -> DomainLimit:
        preset = self.preset_for(domain, mx_hosts)
        base = preset.limit() if preset is not None else self._default
        override = self._overrides.get(domain.lower())
        if override is None:
            return base
        return base.model_copy(update=override.model_dump(exclude_none=True))

    def named_domains(self) -> list[str]:
        """Domains with limits of their own: named in metrics, the rest are 'other'."""
        return sorted({*self._by_domain, *self._overrides})
