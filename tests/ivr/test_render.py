"""Exact TwiML for each action: the wire format Twilio parses."""

from __future__ import annotations

from call_flows import actions as a
from ivr.render import apology, render

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'


def test_say_and_gather_with_speech_and_keys() -> None:
    xml = render([a.Say(a.Prompt("Hola", "es")),
                  a.Gather((a.Prompt("Pulse 1", "es"),), "es", hints=("factura",),
                           num_digits=1)], "TOK")
    assert xml == (
        HEAD + '<Response><Say language="es-ES" voice="Polly.Lucia-Neural">Hola</Say>'
        '<Gather action="/voice/step?s=TOK" actionOnEmptyResult="true" finishOnKey="#" '
        'hints="factura" input="dtmf speech" language="es-ES" method="POST" numDigits="1" '
        'speechTimeout="auto" timeout="5"><Say language="es-ES" voice="Polly.Lucia-Neural">'
        'Pulse 1</Say></Gather><Redirect method="POST">/voice/step?s=TOK&amp;event=noinput'
        '</Redirect></Response>')


def test_keypad_only_gather_has_no_speech_attributes() -> None:
    xml = render([a.Gather((a.Prompt("Premeu 1", "ca", voice="Google.ca-ES-Standard-A"),),
                           "ca", speech=False)], "T")
    assert 'input="dtmf"' in xml and "language=" not in xml.split("<Say")[0]
    assert '<Say language="ca-ES" voice="Google.ca-ES-Standard-A">Premeu 1</Say>' in xml


def test_play_when_prompt_has_audio() -> None:
    xml = render([a.Say(a.Prompt(audio_url="https://cdn.example.com/hola.mp3"))], "T")
    assert xml == HEAD + "<Response><Play>https://cdn.example.com/hola.mp3</Play></Response>"


def test_enqueue_named_after_skills_with_our_wait_url() -> None:
    xml = render([a.Enqueue("general", {"language": "en", "topic": "billing"}, 1)], "T")
    assert xml == (HEAD + '<Response><Enqueue action="/voice/queue-result?s=T" method="POST" '
                   'waitUrl="/voice/wait?s=T" waitUrlMethod="POST">en-billing</Enqueue>'
                   "</Response>")


def test_record_dial_hangup_redirect() -> None:
    rec = render([a.Record((a.Prompt("Deje su mensaje", "es"),), max_length_s=90)], "T")
    assert '<Record action="/voice/recording?s=T&amp;purpose=voicemail" finishOnKey="#" ' \
           'maxLength="90" method="POST" playBeep="true" timeout="5" trim="trim-silence" />' in rec
    dial = render([a.Dial("+34931234567")], "T")
    assert '<Dial action="/voice/dial-result?s=T" method="POST" timeout="30">' \
           "<Number>+34931234567</Number></Dial>" in dial
    assert render([a.Hangup()], "T") == HEAD + "<Response><Hangup /></Response>"
    assert render([a.Redirect()], "T") == (
        HEAD + '<Response><Redirect method="POST">/voice/step?s=T&amp;event=continue'
        "</Redirect></Response>")


def test_nothing_renders_after_a_terminal_verb_and_effects_are_silent() -> None:
    xml = render([a.LookupCustomer("account", "123"), a.Hangup(), a.Say(a.Prompt("x"))], "T")
    assert xml == HEAD + "<Response><Hangup /></Response>"


def test_apology_is_valid_twiml_in_each_language() -> None:
    for lang in ("es", "ca", "en", None, "xx"):
        xml = apology(lang)
        assert xml.startswith(HEAD) and "<Enqueue" in xml


from hypothesis import given
from hypothesis import strategies as st
from twilio.twiml.voice_response import VoiceResponse

from ivr.render import to_xml

_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",),
                                       blacklist_characters="\x00"), max_size=40)


@given(says=st.lists(st.tuples(_text, st.sampled_from(["es-ES", "ca-ES"]), st.booleans()),
                     max_size=4), url=_text, digits=st.one_of(st.none(), st.integers(1, 9)))
def test_our_serialiser_writes_exactly_what_twilios_library_writes(
        says: list[tuple[str, str, bool]], url: str, digits: int | None) -> None:
    doc = VoiceResponse()
    gather = doc.gather(action=url, num_digits=digits, action_on_empty_result=True)
    for text, lang, with_voice in says:
        gather.say(text, language=lang, voice="Polly.Lucia" if with_voice else None)
    doc.pause(length=2)
    doc.redirect(url, method="POST")
    doc.hangup()
    assert to_xml(doc) == str(doc)


def test_prompts_filled_from_the_call_are_never_kept_in_the_render_cache() -> None:
    from call_flows import actions as a
    from ivr import render

    personal = [a.Say(a.Prompt("Hola, Marta Puig.", "es", filled=True)), a.Hangup()]
    before = dict(render._RENDERED)
    twiml = render.render(personal, "T1")
    assert "Marta Puig" in twiml and render._RENDERED == before  # rendered, not kept
    shared = [a.Say(a.Prompt("Gracias por llamar.", "es")), a.Hangup()]
    render.render(shared, "T1")
    assert any("Gracias por llamar." in doc for doc in render._RENDERED.values())
