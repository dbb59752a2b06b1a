# ruff: noqa: E501  (the conversations are prose; their lines stay whole)
"""Writes demo.mbox: the demo mailbox, B2B sales conversations the team wrote.

Run ``python threads/demo/build_demo.py`` after editing the conversations below.
"""

from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

US = {
    "maya": ("Maya Chen", "maya.chen@threadline-demo.com"),
    "tom": ("Tom Becker", "tom.becker@threadline-demo.com"),
    "lea": ("Léa Martin", "lea.martin@threadline-demo.com"),
}
START = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)

# (thread key, subject, [(day offset, sender key or (name, email), recipient, body)])
THREADS = [
    (
        "northwind-pilot",
        "Northwind: pilot for the support team",
        [
            (
                0,
                ("Priya Raman", "priya.raman@northwind-logistics.com"),
                "maya",
                "Hi Maya,\n\nThanks for the demo yesterday. Our support team (about 40 agents) loses a lot of time\n"
                "copying customer emails into Salesforce by hand; that is the pain we want to fix.\n\n"
                "Could we run a 30-day pilot starting in October?\n\nBest,\nPriya",
            ),
            (
                1,
                "maya",
                ("Priya Raman", "priya.raman@northwind-logistics.com"),
                "Hi Priya,\n\nAbsolutely. For 40 seats the pilot is free and the list price after is $45 per seat\n"
                "per month. Who else should be in the kick-off?\n\nMaya",
            ),
            (
                2,
                ("Priya Raman", "priya.raman@northwind-logistics.com"),
                "maya",
                "Our VP of Operations, Daniel Ortiz, signs off on anything above $20k a year, so he should join.\n"
                "We have budget set aside for this in Q4: roughly $25k.\n\nPriya",
            ),
            (
                4,
                "maya",
                ("Priya Raman", "priya.raman@northwind-logistics.com"),
                "Great, I sent an invite for Tuesday 10:00 with Daniel. I'll bring the security questionnaire.\n\nMaya",
            ),
        ],
    ),
    (
        "northwind-warehouse",
        "Northwind warehouse team - separate deal?",
        [
            (
                10,
                ("Daniel Ortiz", "daniel.ortiz@northwind-logistics.com"),
                "maya",
                "Maya,\n\nSeparate from Priya's support pilot: our warehouse managers (12 people) email carriers all day.\n"
                "Could Threadline log those threads against our carrier accounts in HubSpot? Different budget, mine.\n\nDaniel",
            ),
            (
                11,
                "maya",
                ("Daniel Ortiz", "daniel.ortiz@northwind-logistics.com"),
                "Hi Daniel,\n\nYes, that works with HubSpot. I'll treat it as its own opportunity so the two budgets stay\n"
                "apart. What timeline do you have in mind?\n\nMaya",
            ),
            (
                12,
                ("Daniel Ortiz", "daniel.ortiz@northwind-logistics.com"),
                "maya",
                "We need it before peak season, so live by November 15. I make the decision for the warehouse side.\n\nDaniel",
            ),
        ],
    ),
    (
        "acme-renewal",
        "Acme renewal and expansion",
        [
            (
                3,
                "tom",
                ("Sara Kim", "sara.kim@acme-industrial.com"),
                "Hi Sara,\n\nYour renewal is due on October 31. Would you like to add the EU sales team this year?\n\nTom",
            ),
            (
                5,
                ("Sara Kim", "sara.kim@acme-industrial.com"),
                "tom",
                "Hi Tom,\n\nYes, 25 more seats for the EU team. Our CFO, Mark Leland, wants a multi-year discount before he\n"
                "approves. We are also looking at Gong, to be transparent.\n\nSara",
            ),
            (
                6,
                "tom",
                ("Sara Kim", "sara.kim@acme-industrial.com"),
                "Thanks for telling me. A two-year term takes 12% off. I can send a quote for 85 seats today.\n\nTom",
            ),
            (
                9,
                ("Sara Kim", "sara.kim@acme-industrial.com"),
                "tom",
                "Mark approved the two-year option. Please send the order form to procurement@acme-industrial.com.\n\nSara",
            ),
        ],
    ),
    (
        "globex-security",
        "Security review questions from Globex",
        [
            (
                7,
                ("Ingrid Holm", "ingrid.holm@globex.io"),
                "lea",
                "Hello Léa,\n\nBefore we go further our security team needs: SOC 2 report, where data is hosted, and whether\n"
                "you support SSO with Okta.\n\nIngrid",
            ),
            (
                8,
                "lea",
                ("Ingrid Holm", "ingrid.holm@globex.io"),
                "Hi Ingrid,\n\nAttached the SOC 2 Type II summary. Data is hosted in Frankfurt; Okta SSO is included.\n\nLéa",
            ),
            (
                13,
                ("Ingrid Holm", "ingrid.holm@globex.io"),
                "lea",
                "Thanks, security signed off. Next step is legal; our counsel will send redlines next week.\n\nIngrid",
            ),
        ],
    ),
    (
        "initech-pricing",
        "Pricing for 200 seats",
        [
            (
                2,
                ("Bill Lumbergh", "bill@initech.example"),
                "tom",
                "Tom,\n\nWhat would 200 seats cost? We have a budget of about $90,000 for the year and need to decide by the\n"
                "end of the quarter.\n\nBill",
            ),
            (
                3,
                "tom",
                ("Bill Lumbergh", "bill@initech.example"),
                "Hi Bill,\n\nAt 200 seats you are in the volume tier: $37 per seat per month, $88,800 a year.\n\nTom",
            ),
            (
                8,
                ("Bill Lumbergh", "bill@initech.example"),
                "tom",
                "That fits. I need sign-off from our CTO, Joanna, who cares most about the Salesforce integration.\n\nBill",
            ),
        ],
    ),
    (
        "umbrella-competitor",
        "Comparing you with Outreach",
        [
            (
                4,
                ("Alice Abernathy", "alice@umbrella-health.com"),
                "lea",
                "Hi Léa,\n\nWe are comparing Threadline and Outreach. Outreach is cheaper, but our reps hate double entry.\n"
                "What makes your capture more reliable?\n\nAlice",
            ),
            (
                5,
                "lea",
                ("Alice Abernathy", "alice@umbrella-health.com"),
                "Hi Alice,\n\nThreadline keeps every message whole and threads replies correctly, so nothing is entered twice.\n"
                "Happy to run both on a week of your real email.\n\nLéa",
            ),
            (
                7,
                ("Alice Abernathy", "alice@umbrella-health.com"),
                "lea",
                "Let's do that bake-off in two weeks. Our head of sales, Chris Redfield, decides.\n\nAlice",
            ),
            (
                15,
                "lea",
                ("Alice Abernathy", "alice@umbrella-health.com"),
                "Following up on the bake-off: results attached, 0 lost threads on our side versus 14 split threads.\n\nLéa",
            ),
        ],
    ),
    (
        "stark-timing",
        "Timing for rollout",
        [
            (
                6,
                ("Pepper Potts", "pepper@stark-energy.com"),
                "maya",
                "Maya,\n\nWe can't start before January: our CRM migration finishes December 20. Can we sign now and start\n"
                "later?\n\nPepper",
            ),
            (
                7,
                "maya",
                ("Pepper Potts", "pepper@stark-energy.com"),
                "Hi Pepper,\n\nYes: we can sign in November with a start date of January 6.\n\nMaya",
            ),
            (
                20,
                ("Pepper Potts", "pepper@stark-energy.com"),
                "maya",
                "Good. Legal is reviewing the MSA. Budget is approved at $60k.\n\nPepper",
            ),
        ],
    ),
    (
        "wayne-intro",
        "Introduction: Threadline x Wayne Enterprises",
        [
            (
                1,
                "tom",
                ("Lucius Fox", "lucius.fox@wayne-ent.com"),
                "Hello Lucius,\n\nBruce suggested I reach out: Threadline turns your sales team's email into clean CRM updates.\n"
                "Would a 20-minute call next week work?\n\nTom",
            ),
            (
                2,
                ("Lucius Fox", "lucius.fox@wayne-ent.com"),
                "tom",
                "Tom,\n\nThursday at 15:00 works. Our pain is forecasting: deals sit in inboxes, not in the CRM.\n\nLucius",
            ),
            (
                9,
                "tom",
                ("Lucius Fox", "lucius.fox@wayne-ent.com"),
                "Thanks for the call. As promised, a summary: 60 reps, Salesforce, decision by the CRO before year end.\n\nTom",
            ),
        ],
    ),
    (
        "hooli-procurement",
        "Hooli: procurement paperwork",
        [
            (
                11,
                ("Gavin Belson", "procurement@hooli.example"),
                "lea",
                "Dear vendor,\n\nPlease complete the attached supplier form and W-9 before we can issue a PO.\n\nHooli Procurement",
            ),
            (
                12,
                "lea",
                ("Gavin Belson", "procurement@hooli.example"),
                "Hello,\n\nCompleted forms attached. The PO should reference quote Q-2291.\n\nLéa",
            ),
        ],
    ),
    (
        "soylent-churn",
        "Concerns about adoption",
        [
            (
                14,
                ("Robert Thorn", "r.thorn@soylent-foods.com"),
                "maya",
                "Maya,\n\nOnly 30% of our reps log in weekly. If that does not improve we will not renew in March.\n\nRobert",
            ),
            (
                15,
                "maya",
                ("Robert Thorn", "r.thorn@soylent-foods.com"),
                "Robert,\n\nUnderstood. I'd like to run a training session with your team leads and turn on the daily digest.\n\nMaya",
            ),
            (
                16,
                ("Robert Thorn", "r.thorn@soylent-foods.com"),
                "maya",
                "OK, Wednesday works. Please include our sales ops manager, Helen.\n\nRobert",
            ),
            (
                22,
                "maya",
                ("Robert Thorn", "r.thorn@soylent-foods.com"),
                "Robert, weekly logins are at 71% after the training. Shall we talk about the renewal?\n\nMaya",
            ),
        ],
    ),
    (
        "vandelay-de",
        "Angebot für das Vertriebsteam",
        [
            (
                5,
                ("Art Vandelay", "art.vandelay@vandelay-import.de"),
                "lea",
                "Hallo Léa,\n\nwir möchten Threadline für 15 Vertriebsmitarbeiter testen. Budget ist bis 10.000 EUR freigegeben.\n\n"
                "Viele Grüße\nArt",
            ),
            (
                6,
                "lea",
                ("Art Vandelay", "art.vandelay@vandelay-import.de"),
                "Hallo Art,\n\ngerne. Das Angebot für 15 Lizenzen liegt bei 8.100 EUR pro Jahr.\n\nViele Grüße\nLéa",
            ),
            (
                8,
                ("Art Vandelay", "art.vandelay@vandelay-import.de"),
                "lea",
                "Danke! Die Entscheidung trifft unsere Geschäftsführerin, Frau Benes, nächste Woche.\n\nArt",
            ),
        ],
    ),
    (
        "massive-dynamic-tech",
        "API limits and Salesforce sync",
        [
            (
                17,
                ("Nina Sharp", "nina.sharp@massive-dynamic.com"),
                "tom",
                "Tom,\n\nOur reps send about 6,000 emails a day. Will the Salesforce sync keep up, and what are the API limits?\n\nNina",
            ),
            (
                18,
                "tom",
                ("Nina Sharp", "nina.sharp@massive-dynamic.com"),
                "Nina,\n\nYes: updates are batched and idempotent, well within Salesforce's daily limits at that volume.\n\nTom",
            ),
            (
                19,
                ("Nina Sharp", "nina.sharp@massive-dynamic.com"),
                "tom",
                "Good. We are deciding between you and building it in-house; the board meets on the 30th.\n\nNina",
            ),
        ],
    ),
    (
        "cyberdyne-meeting",
        "Quick question",
        [
            (
                21,
                ("Miles Dyson", "miles.dyson@cyberdyne.example"),
                "maya",
                "Hi Maya, do you integrate with Pipedrive? We have 8 reps and want to start next month.\n\nMiles",
            ),
            (
                21,
                "maya",
                ("Miles Dyson", "miles.dyson@cyberdyne.example"),
                "Hi Miles, Pipedrive is on the roadmap for Q1; HubSpot and Salesforce work today.\n\nMaya",
            ),
        ],
    ),
]


def _person(who):
    return US[who] if isinstance(who, str) else who


def build() -> bytes:
    chunks = []
    for key, subject, messages in THREADS:
        ids: list[str] = []
        for n, (day, sender, recipient, body) in enumerate(messages):
            name, address = _person(sender)
            to_name, to_address = _person(recipient)
            msg = EmailMessage()
            msg["From"] = f"{name} <{address}>"
            msg["To"] = f"{to_name} <{to_address}>"
            msg["Subject"] = subject if n == 0 else f"Re: {subject}"
            when = START + timedelta(days=day, hours=n * 2 + 1, minutes=7 * n)
            msg["Date"] = format_datetime(when)
            mid = f"{key}.{n}@mail.demo.example"
            msg["Message-ID"] = f"<{mid}>"
            if ids:
                msg["In-Reply-To"] = f"<{ids[-1]}>"
                msg["References"] = " ".join(f"<{i}>" for i in ids)
            previous = messages[n - 1][3] if n else ""
            quoted = ""
            if previous:
                prev_name = _person(messages[n - 1][1])[0]
                quoted = f"\n\nOn {format_datetime(when - timedelta(hours=3))}, {prev_name} wrote:\n" + "\n".join(
                    "> " + line for line in previous.splitlines()
                )
            msg.set_content(body + quoted + "\n")
            ids.append(mid)
            raw = msg.as_bytes(policy=msg.policy.clone(linesep="\n"))
            raw = b"\n".join(b">" + line if line.startswith(b"From ") else line for line in raw.split(b"\n"))
            chunks.append(f"From {address} {when:%a %b %d %H:%M:%S %Y}\n".encode() + raw.rstrip(b"\n") + b"\n\n")
    return b"".join(chunks)


if __name__ == "__main__":
    path = Path(__file__).with_name("demo.mbox")
    path.write_bytes(build())
    print(f"wrote {path}")
