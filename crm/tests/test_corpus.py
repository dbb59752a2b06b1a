"""The recorded exchanges in ../shared/corpus/crm (older API shapes) beside our adapters.

Read in place through THREADLINE_CORPUS (default ``../shared/corpus`` beside the checkout);
skipped, naming the variable, when the folder is absent.
"""

import json

import pytest

from crm.adapters import CrmClientError
from crm.adapters.hubspot import _deal as hubspot_deal
from crm.adapters.salesforce import SalesforceAdapter
from crm.tests.crm_servers import TOKEN, FakeCrm
from tests.corpus import corpus_dir

CORPUS = corpus_dir() / "crm"
SF = CORPUS / "salesforce-restforce" / "sobject"
HUBSPOT = CORPUS / "hubspot-ruby-vcr" / "extracted_json"

pytestmark = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no CRM corpus at {CORPUS}; set THREADLINE_CORPUS")


class Replay(FakeCrm):
    """Answers each path with a recorded body: {path: (status, file or None)}."""

    def __init__(self, routes):
        super().__init__()
        self.routes = routes

    def unauthorized(self):
        return 401, None, None

    def route(self, r):
        status, name = self.routes[r["path"]]
        return status, json.loads((SF / name).read_text()) if name else None, None


@pytest.mark.parametrize(
    "name", ["query_error_response.json", "upsert_error_response.json", "write_error_response.json"]
)
def test_salesforce_error_lists_become_the_message(name):
    expected = json.loads((SF / name).read_text())[0]["message"]
    with Replay({"/services/data/v62.0/sobjects/Opportunity/006X": (400, name)}) as server:
        adapter = SalesforceAdapter(token=TOKEN, instance_url=server.base_url)
        with pytest.raises(CrmClientError) as error:
            adapter.apply(
                action="update_deal",
                target="deal:006X",
                key="k",
                payload={"deal_id": "006X", "properties": {"amount": "1.00"}},
            )
    assert str(error.value) == f"HTTP 400: {expected}"


def test_salesforce_paged_query_follows_next_records_url(monkeypatch):
    first = json.loads((SF / "query_paginated_first_page_response.json").read_text())
    monkeypatch.setattr("crm.adapters.salesforce._deal", lambda record: record["Text_Label"])
    routes = {
        "/services/data/v62.0/query": (200, "query_paginated_first_page_response.json"),
        first["nextRecordsUrl"]: (200, "query_paginated_last_page_response.json"),
    }
    with Replay(routes) as server:
        pages = list(SalesforceAdapter(token=TOKEN, instance_url=server.base_url).list_deals())
    assert pages == [["First Page"], ["Last Page"]]


def test_salesforce_upsert_answers_old_and_new(tmp_path):
    """Older API versions answer an upsert that updated with 204 and no body (the corpus);
    newer ones with {"id", "created": false}; a create with 201 {"id", "success"}."""
    for status, name, created in ((201, "upsert_created_success_response.json", False), (204, None, False)):
        with Replay({"/services/data/v62.0/sobjects/Task/Threadline_Key__c/k1": (status, name)}) as server:
            adapter = SalesforceAdapter(token=TOKEN, instance_url=server.base_url)
            result = adapter.apply(
                action="create_note",
                target="note",
                key="k1",
                payload={
                    "deal_id": "006X",
                    "contact_email": "",
                    "subject": "s",
                    "body": "b",
                    "timestamp": "2026-01-01T00:00:00.000Z",
                },
            )
        assert result["created"] is created and result["id"] == ("foo" if name else None)


def test_hubspot_v1_deals_carry_properties_as_value_objects_where_v3_has_strings():
    exchange = json.loads((HUBSPOT / "find_all_recent_updated_deals.json").read_text())[0]
    body = exchange["response_body"]
    assert "/deals/v1/deal/recent/modified" in exchange["uri"]
    assert {"results", "hasMore", "offset"} <= set(body)  # v1 pages by offset; v3 by paging.next.after
    old = body["results"][0]
    assert isinstance(old["properties"]["dealname"], dict) and "value" in old["properties"]["dealname"]
    # The same deal in the v3 shape the adapter reads: id, and flat string properties.
    v3 = {"id": str(old["dealId"]), "properties": {k: v["value"] for k, v in old["properties"].items()}}
    deal = hubspot_deal(v3)
    assert (deal.crm_deal_id, deal.title) == (str(old["dealId"]), old["properties"]["dealname"]["value"])
    assert deal.stage == old["properties"].get("dealstage", {}).get("value", "")
