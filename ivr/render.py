"""Actions to TwiML: the only module that imports ``twilio.twiml``.

Every URL in the TwiML is relative (Twilio resolves it against the URL it just
requested, so it works behind proxies) and carries the sealed call state ``s``.
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from twilio.twiml.voice_response import Gather as TwimlGather
from twilio.twiml.voice_response import VoiceResponse

from call_flows import actions as a

# Twilio <Say> language tags for the languages we ship, and sensible neural voices.
LANGUAGE_TAGS = {"es": "es-ES", "ca": "ca-ES", "en": "en-US", "ko": "ko-KR"}
DEFAULT_VOICES = {
    "es": "Polly.Lucia-Neural",
    "ca": "Polly.Arlet-Neural",
    "en": "Polly.Joanna-Neural",
    "ko": "Polly.Seoyeon-Neural",
}

STREAM_NAME = "listen"
SPEECH_KEYS = "0123456789*#"
"""A key ends a spoken answer's ``<Record>``; Twilio posts it as ``Digits``."""

APOLOGY = {
    "es": "Lo sentimos, hemos tenido un problema técnico. Le pasamos con un agente.",
    "ca": "Ho sentim, hem tingut un problema tècnic. Us passem amb un agent.",
    "en": "We are sorry, we had a technical problem. We are putting you through to an agent.",
}


def language_tag(language: str | None) -> str:
    lang = (language or "es").lower()
    return LANGUAGE_TAGS.get(lang, lang if "-" in lang else "es-ES")


def _url(route: str, token: str, extra: str = "") -> str:
    return f"/voice/{route}?s={quote(token, safe='')}{extra}"


def _say(parent: VoiceResponse | TwimlGather, prompt: a.Prompt) -> None:
    if prompt.audio_url:
        parent.play(prompt.audio_url)
        return
    if not prompt.text:
        return
    voice = prompt.voice or DEFAULT_VOICES.get(prompt.language)
    locale = getattr(prompt, "locale", None) or language_tag(prompt.language)
    parent.say(prompt.text, language=locale, voice=voice)


# Rendered documents by their actions, with a stand-in for the state token: a flow's
# prompts repeat from call to call, so most steps reuse a document and only put this
# call's token in (the token is URL-safe base64: quoting and XML escaping leave it as is).
# Prompts filled in from the call (a customer's name) are rendered each time, never kept.
_TOKEN_MARK = "Zz" + secrets.token_hex(8) + "zZ"
_RENDERED: OrderedDict[Any, str] = OrderedDict()
RENDER_CACHE_SIZE = 2048
_render_lock = threading.Lock()


def render(actions: Sequence[a.Action], token: str, stream_url: str | None = None,
           stream_params: Mapping[str, str] | None = None) -> str:
    """TwiML for ``actions``; ``token`` is the sealed state the next request carries.

    ``stream_url`` first forks the caller's audio to our Media Streams websocket
    (``<Start><Stream>``, with ``stream_params`` as ``<Parameter>``s) for Vosk."""
    key: Any = (tuple(actions), stream_url,
                tuple(sorted(stream_params.items())) if stream_params else None)
    if any(p.filled for p in _prompts(actions)):
        key, document = None, None  # a caller's own data (a name...) is never kept
    else:
        try:
            document = _RENDERED.get(key)
        except TypeError:  # an action holding a list or dict: rendered every time
            key, document = None, None
    if document is None:
        document = _render(actions, _TOKEN_MARK, stream_url, stream_params)
        if key is not None:
            with _render_lock:
                _RENDERED[key] = document
                if len(_RENDERED) > RENDER_CACHE_SIZE:
                    _RENDERED.popitem(last=False)
    return document.replace(_TOKEN_MARK, quote(token, safe=""))


def _render(actions: Sequence[a.Action], token: str, stream_url: str | None,
            stream_params: Mapping[str, str] | None) -> str:
    response = VoiceResponse()
    if stream_url:
        stream = response.start().stream(url=stream_url, name=STREAM_NAME, track="inbound_track")
        for name, value in (stream_params or {}).items():
            stream.parameter(name=name, value=value)
    ended = False
    for i, action in enumerate(actions):
        if ended:
            break
        if isinstance(action, a.Say):
            _say(response, action.prompt)
        elif isinstance(action, a.Pause):
            response.pause(length=max(1, min(action.seconds, 60)))
        elif isinstance(action, a.Gather):
            answer_next = any(isinstance(x, a.Record) and x.purpose == "speech"
                              for x in actions[i + 1:i + 2])
            _gather(response, action, token, on_empty=not answer_next)
            if answer_next:  # no key pressed: Twilio goes on to record the spoken answer
                continue
            # Twilio posts the action on timeout too (actionOnEmptyResult); this
            # redirect is a second guard so a silent caller is never left in silence.
            response.redirect(_url("step", token, "&event=noinput"), method="POST")
            ended = True
        elif isinstance(action, a.Record):
            for prompt in action.prompts:
                _say(response, prompt)
            response.record(
                action=_url("recording", token, f"&purpose={action.purpose}"), method="POST",
                max_length=max(1, min(action.max_length_s, 3600)),
                timeout=max(1, min(action.timeout_s, 60)),
                play_beep=action.play_beep,
                finish_on_key=SPEECH_KEYS if action.purpose == "speech" else "#",
                trim="trim-silence",
            )
            response.redirect(_url("recording", token, f"&purpose={action.purpose}&empty=1"),
                              method="POST")
            ended = True
        elif isinstance(action, a.Enqueue):
            response.enqueue(
                queue_name(action), action=_url("queue-result", token), method="POST",
                wait_url=_url("wait", token), wait_url_method="POST",
            )
            ended = True
        elif isinstance(action, a.Dial):
            dial = response.dial(action=_url("dial-result", token), method="POST",
                                 timeout=max(5, min(action.timeout_s, 600)))
            dial.number(action.number)
            ended = True
        elif isinstance(action, a.Hangup):
            response.hangup()
            ended = True
        elif isinstance(action, a.Redirect):
            response.redirect(_url("step", token, "&event=continue"), method="POST")
            ended = True
        # Effects (LookupCustomer, RequestCallback) are performed by the web layer
        # before rendering and never reach the caller.
    return to_xml(response)


def _gather(response: VoiceResponse, action: a.Gather, token: str,
            on_empty: bool = True) -> None:
    inputs = [name for name, on in (("dtmf", action.dtmf), ("speech", action.speech)) if on]
    kwargs: dict[str, object] = {
        "input": " ".join(inputs) or "dtmf",
        "action": _url("step", token),
        "method": "POST",
        "timeout": max(1, min(action.timeout_s, 60)),
        "action_on_empty_result": on_empty,
    }
    if action.num_digits:
        kwargs["num_digits"] = action.num_digits
    if action.finish_on_key:
        kwargs["finish_on_key"] = action.finish_on_key
    if action.speech:
        kwargs["language"] = getattr(action, "locale", None) or language_tag(action.language)
        kwargs["speech_timeout"] = "auto"
        if action.hints:
            kwargs["hints"] = ", ".join(h.replace(",", " ") for h in action.hints)[:4000]
    gather = response.gather(**kwargs)
    for prompt in action.prompts:
        _say(gather, prompt)


def queue_name(action: a.Enqueue) -> str:
    """A Twilio queue per skill set, e.g. ``es-billing``: readable in Twilio's console."""
    parts = [action.skills.get("language", ""), action.skills.get("topic", "")]
    name = "-".join(p for p in parts if p) or action.queue
    return name[:64]


def apology(language: str | None, queue: str = "general") -> str:
    """The safe path when anything inside failed: apologise, then a human."""
    lang = language if language in APOLOGY else "es"
    response = VoiceResponse()
    response.say(APOLOGY[lang], language=language_tag(lang), voice=DEFAULT_VOICES.get(lang))
    response.enqueue(queue, action="/voice/queue-result?s=", method="POST")
    return to_xml(response)


def hangup() -> str:
    response = VoiceResponse()
    response.hangup()
    return to_xml(response)


def _prompts(actions: Iterable[a.Action]) -> Iterator[a.Prompt]:
    for action in actions:
        if isinstance(action, a.Say):
            yield action.prompt
        elif isinstance(action, (a.Gather, a.Record)):
            yield from action.prompts


def prompts_text(actions: Iterable[a.Action]) -> list[str]:
    """The words a caller hears (for logs and tests)."""
    return [p.text for p in _prompts(actions)]


def hold(language: str, sentences: Sequence[str], token: str,
         music: Sequence[tuple[str, int]] = (("/static/hold.wav", 1),),
         offer: bool = True, voicemail: bool = False) -> str:
    """One hold period: the announcement, then ``music`` as (clip URL, loop count).

    It all plays inside a one-key Gather whose key goes to ``hold-key``; while no
    callback is on ``offer`` the URL says so (``offer=0``) and key 1 does nothing;
    while a voicemail is offered it says ``vm=1`` and key 2 leaves a message.
    """
    response = VoiceResponse()
    action = (f"/voice/hold-key?s={quote(token, safe='')}" + ("" if offer else "&offer=0")
              + ("&vm=1" if voicemail else ""))
    gather = response.gather(num_digits=1, action=action, method="POST", timeout=1,
                             input="dtmf", action_on_empty_result=False)
    voice = DEFAULT_VOICES.get(language)
    for sentence in sentences:
        gather.say(sentence, language=language_tag(language), voice=voice)
    for url, loop in music:
        if loop == 1:
            gather.play(url)
        else:
            gather.play(url, loop=loop)
    return to_xml(response)


def hold_voicemail(language: str, prompt: str, token: str, max_length_s: int = 120,
                   silence_s: int = 5) -> str:
    """A message left from the hold: the prompt, the beep, ``<Record>`` (ended by ``#``,
    silence or ``max_length_s``) to ``hold-voicemail-done``; when nothing is recorded
    Twilio goes on to the redirect, which says so."""
    response = VoiceResponse()
    response.say(prompt, language=language_tag(language), voice=DEFAULT_VOICES.get(language))
    done = f"/voice/hold-voicemail-done?s={quote(token, safe='')}"
    response.record(action=done, method="POST", max_length=max(1, min(max_length_s, 3600)),
                    timeout=max(1, min(silence_s, 60)), play_beep=True, finish_on_key="#",
                    trim="trim-silence")
    response.redirect(done + "&empty=1", method="POST")
    return to_xml(response)


def say_and_hang_up(language: str, text: str) -> str:
    response = VoiceResponse()
    response.say(text, language=language_tag(language), voice=DEFAULT_VOICES.get(language))
    response.hangup()
    return to_xml(response)


def leave_queue() -> str:
    response = VoiceResponse()
    response.leave()
    return to_xml(response)


def empty() -> str:
    return to_xml(VoiceResponse())


CONNECTING = {
    "es": "Le pasamos con un agente.",
    "ca": "Us passem amb un agent.",
    "en": "Connecting you to an agent now.",
}
CALLBACK_GREETING = {
    "es": "Hola, le llamamos de Centralita, tal como nos pidió. Un momento, le pasamos con un agente.",
    "ca": "Hola, us truquem de Centralita, tal com ens vau demanar. Un moment, us passem amb un agent.",
    "en": "Hello, this is Centralita calling you back, as you asked. One moment, connecting you to an agent.",
}


AGENT_MISSED = {
    "es": "Disculpe, el agente no ha podido atenderle. Conserva su turno: es el primero.",
    "ca": "Disculpeu, l'agent no us ha pogut atendre. Conserveu el torn: sou el primer.",
    "en": "Sorry, the agent could not take your call. You keep your place: you are next.",
}


def with_notice(document: str, language: str | None, texts: Mapping[str, str]) -> str:
    """``document`` with a ``<Say>`` of ``texts`` in the caller's language put first."""
    lang = language if language is not None and language in texts else "es"
    say = VoiceResponse()
    say.say(texts[lang], language=language_tag(lang), voice=DEFAULT_VOICES.get(lang))
    notice = to_xml(say).split("<Response>", 1)[1].rsplit("</Response>", 1)[0]
    head, sep, rest = document.partition("<Response>")
    return head + sep + notice + rest if sep else document


#: Twilio requests it on the agent's leg once they pick up (``<Number url=...>``).
AGENT_ANSWERED_PATH = "/voice/agent-answered"


def connect_to_agent(contact: str, language: str | None, callback: bool = False,
                     call_id: str | None = None) -> str:
    """Bridge a caller to an agent: ``contact`` is E.164, ``client:NAME`` or a SIP URI.

    ``call_id`` (the router's id of the call) goes in the Dial action URL: a callback
    leg has a CallSid of its own, so the dial result must name the router call itself.
    It also goes in the agent's leg's ``url``, which Twilio requests when the agent
    picks up (before joining the two): how we know the agent answered at all, when the
    caller hangs up first and the dial result comes late or not at all.
    """
    lang = language if language in CONNECTING else "es"
    response = VoiceResponse()
    text = (CALLBACK_GREETING if callback else CONNECTING)[lang]
    response.say(text, language=language_tag(lang), voice=DEFAULT_VOICES.get(lang))
    action = "/voice/agent-dial-result"
    leg: dict[str, str] = {}
    if call_id:
        action += "?call=" + quote(call_id, safe="")
        leg = {"url": AGENT_ANSWERED_PATH + "?call=" + quote(call_id, safe=""),
               "method": "POST"}
    dial = response.dial(timeout=30, action=action, method="POST")
    if contact.startswith("client:"):
        dial.client(contact.split(":", 1)[1], **leg)
    elif contact.startswith("sip:"):
        dial.sip(contact, **leg)
    else:
        dial.number(contact, **leg)
    return to_xml(response)


# ----------------------------------------------------------------------------- serialising
# twilio's to_xml goes through ElementTree and is a third of a webhook's time; this
# writes the same bytes (sorted attributes, ElementTree's escaping, "<X />" when empty)
# directly. tests/ivr/test_render.py checks it against the library on random documents.

_ATTR_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                               "\r": "&#13;", "\n": "&#10;", "\t": "&#09;"})
_TEXT_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def _node_xml(node: Any, out: list[str]) -> None:
    out.append("<" + node.name)
    for key in sorted(node.attrs):
        value = node.attrs[key]
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f' {key}="{text.translate(_ATTR_ESCAPES)}"')
    value = node.value
    if isinstance(value, dict):
        value = json.dumps(value)
    if not value and not node.verbs:
        out.append(" />")
        return
    out.append(">")
    if value:
        out.append(str(value).translate(_TEXT_ESCAPES))
    for verb in node.verbs:
        if isinstance(verb, str):
            out.append(verb.translate(_TEXT_ESCAPES))
        else:
            _node_xml(verb, out)
    out.append(f"</{node.name}>")


def to_xml(document: Any) -> str:
    """The TwiML document as Twilio's library would print it, without ElementTree."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>']
    _node_xml(document, out)
    return "".join(out)
