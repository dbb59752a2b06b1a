from extraction.grounding import evidence_ground, span_ground

TEXTS = {1: "Hello.\nOur budget is   $40k for\nthis year.", 2: "Decision by March 31st."}


def test_exact_span_is_accepted():
    start = TEXTS[1].index("Our budget")
    span = {"message_id": 1, "start": start, "end": start + 10, "quote": "Our budget"}
    assert span_ground(span, TEXTS)["grounded"] == "exact"


def test_whitespace_differences_are_accepted_where_they_stand():
    start = TEXTS[1].index("Our budget")
    end = TEXTS[1].index("for") + 3
    span = {"message_id": 1, "start": start, "end": end, "quote": "Our budget is $40k for"}
    grounded = span_ground(span, TEXTS)
    assert grounded["grounded"] == "exact"
    assert grounded["quote"] == TEXTS[1][start:end]


def test_wrong_offsets_are_reanchored_where_the_quote_is():
    span = {"message_id": 1, "start": 0, "end": 5, "quote": "$40k for this year"}
    grounded = span_ground(span, TEXTS)
    assert grounded["grounded"] == "reanchored"
    assert TEXTS[1][grounded["start"] : grounded["end"]] == "$40k for\nthis year"


def test_quote_in_another_message_is_reanchored_there():
    grounded = span_ground({"message_id": 1, "start": 0, "end": 3, "quote": "March 31st"}, TEXTS)
    assert grounded["message_id"] == 2


def test_invented_quote_is_not_grounded():
    assert span_ground({"message_id": 1, "start": 0, "end": 5, "quote": "budget of $90k"}, TEXTS) is None
    kept, all_found = evidence_ground([{"message_id": 1, "start": 0, "end": 5, "quote": "budget of $90k"}], TEXTS)
    assert kept == [] and all_found is False


def test_no_evidence_is_not_grounded():
    assert evidence_ground([], TEXTS) == ([], False)
