"""Per line and per node knobs of live listening: end of turn and barge-in.

Three knobs, each settable for every call (``default``), per line (by line name) and
per node (``"flow_id:node_id"``); the most specific one set wins:

``early_end_ms`` (150)
    Grammar turns: silence after which a turn whose words already are a whole answer
    ends. Lower answers faster but cuts callers who pause inside a phrase ("no...
    es correcto"); 0 turns early ends off.
``end_silence_ms`` (700)
    Silence that ends any other turn (free speech, a phrase that could go on,
    digits short of the expected count). Raise it for slow talkers or long numbers.
``barge_in`` (``auto``)
    ``auto``: speech that starts before the prompt's estimated end stops it;
    ``always``: the first speech in each turn stops whatever plays (prompts of
    unknown length); ``never``: prompts always play to the end (legal notices).

Written as YAML (:func:`load_tuning`)::

    default: {early_end_ms: 150, end_silence_ms: 700, barge_in: auto}
    lines:
      soporte: {end_silence_ms: 900}
    nodes:
      "demo:account_number": {early_end_ms: 300}
      "demo:legal_notice": {barge_in: never}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from speech.endpointing import EndpointConfig
from speech.errors import SpeechError
from speech.streaming import BargePolicy


class TuningError(SpeechError):
    """The tuning file is unreadable or holds an unknown knob or value."""


_LIMITS = {"early_end_ms": (0, 2000), "end_silence_ms": (100, 5000)}


@dataclass(frozen=True)
class Knobs:
    early_end_ms: int | None = None
    end_silence_ms: int | None = None
    barge_in: BargePolicy | None = None

    @classmethod
    def parse(cls, data: Any, where: str) -> Knobs:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise TuningError(f"{where}: expected a mapping of knobs, got {data!r}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key in _LIMITS:
                low, high = _LIMITS[key]
                if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
                    raise TuningError(f"{where}.{key}: expected whole milliseconds between "
                                      f"{low} and {high}, got {value!r}")
                values[key] = value
            elif key == "barge_in":
                try:
                    values[key] = BargePolicy(str(value))
                except ValueError:
                    raise TuningError(f"{where}.barge_in: expected auto, always or never, "
                                      f"got {value!r}") from None
            else:
                raise TuningError(f"{where}: unknown knob {key!r} (known: early_end_ms, "
                                  "end_silence_ms, barge_in)")
        return cls(**values)

    def over(self, base: Knobs) -> Knobs:
        """These knobs, with ``base``'s where these are unset."""
        return Knobs(
            self.early_end_ms if self.early_end_ms is not None else base.early_end_ms,
            self.end_silence_ms if self.end_silence_ms is not None else base.end_silence_ms,
            self.barge_in if self.barge_in is not None else base.barge_in)


@dataclass(frozen=True)
class SpeechTuning:
    default: Knobs = Knobs()
    lines: Mapping[str, Knobs] = field(default_factory=dict)
    nodes: Mapping[str, Knobs] = field(default_factory=dict)

    def for_turn(self, line: str, flow: str, node: str,
                 base: EndpointConfig | None = None) -> tuple[EndpointConfig, BargePolicy]:
        """The endpointing and barge-in policy of one turn."""
        knobs = self.nodes.get(f"{flow}:{node}", Knobs()).over(
            self.lines.get(line, Knobs()).over(self.default))
        config = base or EndpointConfig()
        if knobs.early_end_ms is not None:
            config = replace(config, early_end_ms=knobs.early_end_ms)
        if knobs.end_silence_ms is not None:
            config = replace(config, end_silence_ms=knobs.end_silence_ms)
        return config, knobs.barge_in or BargePolicy.AUTO

    def unknown_names(self, lines: Iterable[str], nodes: Iterable[str]) -> list[str]:
        """Line and ``flow:node`` names this tuning sets that the flows do not have (a
        misspelt name would silently do nothing)."""
        known_lines, known_nodes = set(lines), set(nodes)
        return ([f"lines.{name}: no such line" for name in self.lines if name not in known_lines]
                + [f"nodes.{name}: no such flow node" for name in self.nodes
                   if name not in known_nodes])

    @classmethod
    def from_mapping(cls, data: Any, source: str = "tuning") -> SpeechTuning:
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise TuningError(f"{source}: expected a mapping with default, lines, nodes")
        unknown = set(data) - {"default", "lines", "nodes"}
        if unknown:
            raise TuningError(f"{source}: unknown section(s) {sorted(unknown)} "
                              "(known: default, lines, nodes)")
        sections: dict[str, dict[str, Knobs]] = {}
        for name in ("lines", "nodes"):
            part = data.get(name) or {}
            if not isinstance(part, Mapping):
                raise TuningError(f"{source}.{name}: expected a mapping")
            sections[name] = {str(k): Knobs.parse(v, f"{source}.{name}.{k}")
                              for k, v in part.items()}
        for key in sections["nodes"]:
            if ":" not in key:
                raise TuningError(f"{source}.nodes.{key}: name nodes as flow_id:node_id")
        return cls(Knobs.parse(data.get("default"), f"{source}.default"),
                   sections["lines"], sections["nodes"])


def load_tuning(path: str | Path) -> SpeechTuning:
    """Read a tuning YAML file (``yaml.safe_load``)."""
    file = Path(path)
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise TuningError(f"{file}: cannot read the speech tuning file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise TuningError(f"{file}: not valid YAML ({exc})") from None
    return SpeechTuning.from_mapping(data, str(file))


__all__ = ["Knobs", "SpeechTuning", "TuningError", "load_tuning"]
