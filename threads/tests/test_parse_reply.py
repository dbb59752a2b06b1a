# ruff: noqa: E501  (each case is one whole mail body, kept on one line)
"""Parsing fallbacks and reply text on mail the team wrote (no database)."""

from datetime import UTC, datetime

from threads.ingest.parse import message_parse
from threads.ingest.reply import reply_text


def test_header_fallbacks():
    raw = (
        b"From: =?x-unknown-charset?q?J=F6rg?= <jorg@kunde.example>\n"
        b'To: "M\xc3\xbcller, Anna" <anna@kunde.example>, rep@threadline-demo.com\n'
        b"Subject: Angebot f\xfcr Q4\n"
        b"Subject: a second subject header\n"
        b"Date: not a date at all\n"
        b"Message-ID:   <ID-1@Kunde.example>  \n"
        b"References: <a@x>\n <b@x> junk <a@x>\n"
        b"In-Reply-To: b@x\n"
        b"Content-Type: text/plain; charset=utf-8\n\n"
        b"Gr\xfc\xdfe\n"
    )
    parsed = message_parse(raw)
    assert parsed.subject == "Angebot für Q4"  # raw 8-bit, not UTF-8: Windows-1252
    assert parsed.headers["subject"] == ["Angebot für Q4", "a second subject header"]
    assert parsed.from_email == "jorg@kunde.example" and parsed.from_name.endswith("rg")
    assert parsed.to == ["anna@kunde.example", "rep@threadline-demo.com"]
    assert parsed.sent_at is None
    assert parsed.message_id == "ID-1@Kunde.example"
    assert parsed.references == ["a@x", "b@x"] and parsed.in_reply_to == ["b@x"]
    assert parsed.text.strip() == "Grüße"  # declared UTF-8, is Windows-1252


def test_encoded_words_dates_and_wrong_charset():
    raw = (
        b"From: =?utf-8?b?w4lsb2RpZQ==?= <elodie@client.example>\n"
        b"Subject: =?iso-8859-1?q?R=E9union_budget?= =?utf-8?q?_=E2=82=AC?=\n"
        b"Date: Tue, 3 Mar 2026 14:05:00 +0100\n"
        b"Content-Type: text/plain; charset=us-ascii\n\n"
        b"Co\xc3\xbbt total\n"
    )
    parsed = message_parse(raw)
    assert parsed.from_name == "Élodie"
    assert parsed.subject == "Réunion budget €"
    assert parsed.sent_at == datetime(2026, 3, 3, 13, 5, tzinfo=UTC)
    assert parsed.text.strip() == "Coût total"


def test_missing_boundary_still_finds_text():
    raw = (
        b'From: a@b.example\nSubject: x\nContent-Type: multipart/alternative; boundary="nope"\n\n'
        b"--other\nContent-Type: text/plain; charset=utf-8\n\nThe budget is 40k.\n--other--\n"
    )
    assert "The budget is 40k." in message_parse(raw).text


def test_reply_text_languages_and_outlook():
    cases = {
        "Passt, danke!\n\nAm 03.03.2026 um 10:15 schrieb Anna Müller <anna@kunde.example>:\n> Wie ist der Stand?\n": (
            "Passt, danke!"
        ),
        "Parfait, merci.\n\nLe mar. 3 mars 2026 à 10:15, Élodie <elodie@client.example> a écrit :\n> Et le budget ?\n": (
            "Parfait, merci."
        ),
        "De acuerdo.\n\nEl mar, 3 mar 2026 a las 10:15, Carlos (<carlos@cliente.example>) escribió:\n> ¿Presupuesto?\n": (
            "De acuerdo."
        ),
        "Sounds good.\n\n-----Original Message-----\nFrom: Bob\nSent: Monday\nSubject: Plan\n\nOld text\n": (
            "Sounds good."
        ),
        "Yes.\n\nFrom: Bob Smith <bob@x.example>\nSent: Monday, March 2, 2026 9:00 AM\nTo: Ana\nSubject: Q\n\nOld": (
            "Yes."
        ),
        "Ja.\n\nVon: Bob Smith <bob@x.example>\nGesendet: Montag, 2. März 2026 09:00\nAn: Ana\nBetreff: Q\n\nAlt": "Ja.",
        "Oui.\n\nDe : Bob <bob@x.example>\nEnvoyé : lundi 2 mars 2026 09:00\nÀ : Ana\nObjet : Q\n\nAncien": "Oui.",
        "Sí.\n\nDe: Bob <bob@x.example>\nEnviado: lunes, 2 de marzo de 2026 9:00\nPara: Ana\n\nViejo": "Sí.",
        "Thanks!\n\n-- \nMaya Chen\nAccount Executive\n": "Thanks!",
        "Got it.\n\nVon meinem iPhone gesendet\n": "Got it.",
    }
    for body, expected in cases.items():
        assert reply_text(body) == expected, body


def test_large_base64_parts_decode_from_the_raw_bytes():
    import os
    from email.message import EmailMessage

    from threads.ingest.parse import LARGE_MESSAGE

    blob = os.urandom(LARGE_MESSAGE)
    text = "Lorem ipsum dolor sit amet, consectetur adipiscing elit. " * 50000
    inner = EmailMessage()
    inner["Subject"] = "forwarded"
    inner.set_content("see attached")
    inner.add_attachment(blob, maintype="application", subtype="pdf", filename="inner.pdf")
    msg = EmailMessage()
    msg["From"], msg["Subject"], msg["Message-ID"] = "a@c.example", "Big", "<big@x>"
    msg.set_content(text, cte="base64")
    msg.add_attachment(blob, maintype="application", subtype="pdf", filename="contract.pdf")
    msg.add_attachment(inner)
    parsed = message_parse(msg.as_bytes())
    assert parsed.text.strip() == text.strip()
    contract, forwarded = parsed.attachments
    assert contract.data == blob and contract.filename == "contract.pdf"
    assert message_parse(forwarded.data).attachments[0].data == blob


def test_a_forward_keeps_the_forwarded_message_and_drops_the_signature():
    from threads.ingest.reply import is_forward, reply_text

    body = (
        "Sam, see my boss's note below.\n\n-----Original Message-----\nFrom: Paul Grant <paul@granite.example>\n"
        "Sent: Friday, August 28, 2026 5:02 PM\nSubject: CRM\n\nMia, we can spend up to $30,000 on this.\n\n-- \nMia Chen\n"
    )
    assert all(is_forward(s) for s in ("Fwd: CRM", "FW: CRM", "WG: Angebot", "TR: Devis", "RV: Oferta", "[ext] Fwd: x"))
    assert not any(is_forward(s) for s in ("Re: CRM", "Forward planning", "CRM"))
    kept = reply_text(body, forwarded=True)
    assert "we can spend up to $30,000" in kept and "Mia Chen" not in kept
    assert "we can spend" not in reply_text(body)
