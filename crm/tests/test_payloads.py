"""What a thread's accepted values write, read from the value shapes the extractors really
give (extraction/extractors/rules.py, extraction/schemas.py)."""

from datetime import UTC, datetime

from crm.selectors import CONTACT_FIELDS, deal_properties, thread_writes_build
from crm.services import crm_sync_thread
from crm.tests.conftest import connect, policy_set
from extraction.extractors.base import MessageInput
from extraction.extractors.rules import RulesExtractor
from extraction.models import FieldValue
from extraction.schemas import SALES_BANT_V1
from workspaces.rls import workspace_context


def _value(key, raw) -> FieldValue:
    return FieldValue(field_key=key, field_value_json=raw, confidence=0.9, status=FieldValue.Status.ACCEPTED)


def test_the_close_date_is_the_timeline_the_rules_extractor_gives():
    message = MessageInput(1, "We have to go live by the end of Q3 2027.", datetime(2027, 1, 10), "dana@acme.example")
    [timeline] = [p for p in RulesExtractor().extract([message], SALES_BANT_V1).proposals if p.field == "timeline"]
    assert timeline.value == {"date": "2027-09-30", "phrase": "end of Q3 2027"}  # a dict, not a string
    assert deal_properties({"timeline": _value("timeline", timeline.value)}) == {"close_date": "2027-09-30"}


def test_the_close_date_reads_a_bare_iso_date_and_skips_what_is_not_a_date():
    # The schema's own description ("an ISO date"): what a model answers or a person types in an edit.
    assert deal_properties({"timeline": _value("timeline", "2027-03-31")}) == {"close_date": "2027-03-31"}
    for raw in ({"date": None, "phrase": "soon"}, {"phrase": "next spring"}, "next spring", "2027-13-01", 20270331):
        assert deal_properties({"timeline": _value("timeline", raw)}) == {}, raw


def test_a_budget_range_writes_its_top_as_the_amount():
    message = MessageInput(1, "Our budget is between $30k and $45k.", datetime(2027, 1, 10), "dana@acme.example")
    [budget] = [p for p in RulesExtractor().extract([message], SALES_BANT_V1).proposals if p.field == "budget"]
    assert budget.value == {"min": 30000.0, "max": 45000.0, "currency": "USD"}
    assert deal_properties({"budget": _value("budget", budget.value)}) == {"amount": "45000.00"}


# --- whose name, title and company ---------------------------------------------------------


def _thread_with_messages(ws, messages):
    """A thread whose primary contact is ana@customer.example, with these (sender, text)
    messages, and the contact values the rules extractor reads from them, accepted."""
    from extraction.selectors import thread_inputs
    from extraction.tests.factories import FieldValueFactory
    from threads.tests.factories import MessageFactory, ThreadFactory

    with workspace_context(ws):
        thread = ThreadFactory(workspace=ws)
        rows = [
            MessageFactory(
                workspace=ws,
                thread=thread,
                from_email=sender,
                reply_text=text,
                text=text,
                sent_at=datetime(2027, 1, 10 + n, tzinfo=UTC),
            )
            for n, (sender, text) in enumerate(messages)
        ]
        proposals = RulesExtractor().extract(thread_inputs(thread=thread), SALES_BANT_V1).proposals
        for p in proposals:
            FieldValueFactory(
                workspace=ws,
                run__thread=thread,
                field_key=p.field,
                field_value_json=p.value,
                evidence_json=p.evidence,
                status="accepted",
            )
    return thread, rows, {p.field: p for p in proposals}


def _contact_writes(ws, thread):
    with workspace_context(ws):
        writes, _ = thread_writes_build(thread_id=thread.pk, crm="hubspot")
    return [(w.target, w.payload) for w in writes if w.action == "upsert_contact"]


def test_a_title_goes_to_the_person_who_wrote_it_not_to_the_primary_contact(workspace, hubspot):
    thread, rows, found = _thread_with_messages(
        workspace,
        [
            ("ana@customer.example", "Hi, could you send pricing for 40 seats?"),
            ("dana@customer.example", "Hi all, I'm Dana Kim, VP of Operations at Acme Corp. Ana asked me to weigh in."),
        ],
    )
    assert thread.primary_contact_email == "ana@customer.example"
    # The evidence names Dana's message: the name, title and company are Dana's.
    assert {k: (p.value, p.evidence[0]["message_id"]) for k, p in found.items() if k in CONTACT_FIELDS} == {
        "contact_name": ("Dana Kim", rows[1].pk),
        "contact_title": ("VP of Operations", rows[1].pk),
        "company": ("Acme Corp", rows[1].pk),
    }
    assert _contact_writes(workspace, thread) == [
        ("contact:ana@customer.example", {"email": "ana@customer.example", "properties": {}}),
        (
            "contact:dana@customer.example",
            {
                "email": "dana@customer.example",
                "properties": {
                    "first_name": "Dana",
                    "last_name": "Kim",
                    "company": "Acme Corp",
                    "job_title": "VP of Operations",
                },
            },
        ),
    ]
    policy_set(workspace, crm="hubspot", crm_mode="sync")
    connect(workspace)
    rows = crm_sync_thread(workspace_id=workspace.pk, thread_id=thread.pk)
    assert [(r.target, r.status) for r in rows] == [
        ("contact:ana@customer.example", "sent"),
        ("contact:dana@customer.example", "sent"),
    ]
    ana, dana = hubspot.contacts["ana@customer.example"], hubspot.contacts["dana@customer.example"]
    assert not {"jobtitle", "firstname", "lastname", "company"} & set(ana["properties"])
    assert (dana["properties"]["jobtitle"], dana["properties"]["firstname"], dana["properties"]["lastname"]) == (
        "VP of Operations",
        "Dana",
        "Kim",
    )


def test_the_primary_contacts_own_title_stays_on_their_record(workspace):
    thread, _, _ = _thread_with_messages(
        workspace, [("ana@customer.example", "Hello, this is Ana Lima, Head of IT at Acme Corp. We need a CRM.")]
    )
    assert _contact_writes(workspace, thread) == [
        (
            "contact:ana@customer.example",
            {
                "email": "ana@customer.example",
                "properties": {
                    "first_name": "Ana",
                    "last_name": "Lima",
                    "company": "Acme Corp",
                    "job_title": "Head of IT",
                },
            },
        )
    ]


def test_a_title_from_our_own_team_or_without_evidence_in_the_thread_is_nobodys(workspace):
    from extraction.tests.factories import FieldValueFactory
    from threads.tests.factories import MessageFactory

    thread, _, _ = _thread_with_messages(workspace, [("ana@customer.example", "Hi, could you send pricing?")])
    with workspace_context(workspace):
        ours = MessageFactory(workspace=workspace, thread=thread, from_email=f"sam@{workspace.slug}.example")
        elsewhere = MessageFactory(workspace=workspace, from_email="lee@customer.example")  # another thread
        for key, raw, message_id in (
            ("contact_title", "Account Director", ours.pk),  # our rep, as a model might read it
            ("contact_name", {"name": "Lee Park", "title": None}, elsewhere.pk),
            ("company", "Acme Corp", None),
        ):
            FieldValueFactory(
                workspace=workspace,
                run__thread=thread,
                field_key=key,
                field_value_json=raw,
                evidence_json=[{"message_id": message_id, "start": 0, "end": 2, "quote": "Hi"}],
                status="accepted",
            )
    assert _contact_writes(workspace, thread) == [
        ("contact:ana@customer.example", {"email": "ana@customer.example", "properties": {}})
    ]
