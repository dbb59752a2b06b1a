import pytest

from workspaces.policy import PolicyError, policy_defaults, policy_validate


def test_empty_document_gets_every_default():
    assert policy_validate({}) == policy_defaults()
    assert policy_defaults()["crm_mode"] == "dry_run"


def test_given_keys_are_kept_and_the_rest_defaulted():
    policy = policy_validate({"min_confidence": 0.6, "always_review_fields": []})
    assert policy["min_confidence"] == 0.6
    assert policy["always_review_fields"] == []
    assert policy["extractor"] == "rules"


@pytest.mark.parametrize(
    ("document", "key", "fragment"),
    [
        ({"min_confidnce": 0.5}, "min_confidnce", "unknown key"),
        ({"min_confidence": "high"}, "min_confidence", "type number"),
        ({"min_confidence": 1.5}, "min_confidence", "between 0 and 1"),
        ({"auto_link_margin": -0.1}, "auto_link_margin", "between 0 and 1"),
        ({"field_min_confidence": {"budget": 2}}, "field_min_confidence.budget", "between 0 and 1"),
        ({"crm_mode": "live"}, "crm_mode", "one of dry_run, sync"),
        ({"always_review_fields": "budget"}, "always_review_fields", "type array"),
        ({"undo_window_seconds": 1.5}, "undo_window_seconds", "type integer"),
    ],
)
def test_bad_documents_name_the_key(document, key, fragment):
    with pytest.raises(PolicyError) as info:
        policy_validate(document)
    assert info.value.key == key
    assert fragment in str(info.value)


def test_a_document_that_is_not_an_object_is_refused():
    with pytest.raises(PolicyError, match="JSON object"):
        policy_validate(["min_confidence", 0.5])
