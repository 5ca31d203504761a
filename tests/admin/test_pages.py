"""The payment and Pi user admin pages: columns, search, read-only fields, no add or delete."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_pi_payments.admin.payments import MAX_EVENTS_SHOWN
from django_pi_payments.models import Payment, PaymentEvent, PiUser

from .conftest import PaymentMaker

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = "admin:pi_payments_payment_changelist"


def change_url(payment: Payment) -> str:
    return reverse("admin:pi_payments_payment_change", args=[payment.pk])


def action_choices(response: Any) -> set[str]:
    if response.context["action_form"] is None:
        return set()
    return {name for name, _label in response.context["action_form"].fields["action"].choices}


def test_changelist_columns_and_filters(admin_client: Client, make: PaymentMaker) -> None:
    completed = make.completed()
    approved = make.approved()

    response = admin_client.get(reverse(CHANGELIST))

    assert response.status_code == 200
    content = response.content.decode()
    for payment in (completed, approved):
        assert payment.identifier in content
        assert payment.pi_user is not None
        assert payment.pi_user.username in content
    headers = [str(header["text"]) for header in response.context["result_headers"]]
    assert headers[1:] == [
        "identifier",
        "user",
        "amount",
        "direction",
        "status",
        "network",
        "created",
        "completed",
    ]
    filters = {str(spec.title) for spec in response.context["cl"].filter_specs}
    assert filters == {"status", "direction", "network", "created"}
    assert response.context["cl"].date_hierarchy == "created_at"


def test_changelist_filters_by_network_without_reading_every_payment(
    admin_client: Client, make: PaymentMaker
) -> None:
    testnet = make.completed()
    mainnet = make.completed()
    Payment.objects.filter(pk=mainnet.pk).update(network="Pi Network")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(reverse(CHANGELIST))
    [network] = [spec for spec in response.context["cl"].filter_specs if spec.title == "network"]
    assert [choice["display"] for choice in network.choices(response.context["cl"])] == [
        "All",
        "Pi Network",
        "Pi Testnet",
    ]
    assert not [q["sql"] for q in queries if "DISTINCT" in q["sql"] and "network" in q["sql"]]

    response = admin_client.get(reverse(CHANGELIST), {"network__exact": "Pi Network"})
    assert list(response.context["cl"].result_list) == [mainnet]
    response = admin_client.get(reverse(CHANGELIST), {"network__exact": "Pi Testnet"})
    assert list(response.context["cl"].result_list) == [testnet]


def test_changelist_filters_by_status(admin_client: Client, make: PaymentMaker) -> None:
    completed = make.completed()
    approved = make.approved()

    response = admin_client.get(reverse(CHANGELIST), {"status__exact": "completed"})

    shown = list(response.context["cl"].result_list)
    assert shown == [completed]
    assert approved not in shown


def count_queries(client: Client, url: str) -> int:
    """The queries of one GET of ``url``, once the session and content types are warm."""
    client.get(url)
    with CaptureQueriesContext(connection) as queries:
        assert client.get(url).status_code == 200
    return len(queries.captured_queries)


def test_changelist_queries_do_not_grow_with_rows(
    admin_client: Client, make: PaymentMaker, django_assert_num_queries: Any
) -> None:
    """The same queries for 1 row as for 50: no query per payment (payer) or Pi user (user)."""
    pages = [reverse(CHANGELIST), reverse("admin:pi_payments_piuser_changelist")]
    make.approved()
    with_one = [count_queries(admin_client, url) for url in pages]
    for _ in range(49):
        make.approved()
    Payment.objects.filter(pk__in=Payment.objects.all()[:10]).update(pi_user=None)

    for url, queries in zip(pages, with_one, strict=True):
        with django_assert_num_queries(queries):
            response = admin_client.get(url)
        assert len(response.context["cl"].result_list) == 50


@pytest.mark.parametrize("field", ["identifier", "txid", "user_uid", "username"])
def test_search(admin_client: Client, make: PaymentMaker, field: str) -> None:
    wanted = make.completed()
    make.completed()
    assert wanted.pi_user is not None
    term = wanted.pi_user.username if field == "username" else getattr(wanted, field)

    response = admin_client.get(reverse(CHANGELIST), {"q": term})

    assert list(response.context["cl"].result_list) == [wanted]


def test_change_form_is_read_only(admin_client: Client, make: PaymentMaker) -> None:
    payment = make.completed()

    response = admin_client.get(change_url(payment))

    assert response.status_code == 200
    content = response.content.decode()
    assert payment.identifier in content
    assert payment.txid is not None and payment.txid in content
    assert 'name="_save"' not in content
    assert 'name="amount"' not in content
    admin_form = response.context["adminform"]
    assert set(admin_form.readonly_fields) >= {
        "amount",
        "identifier",
        "user_uid",
        "direction",
        "from_address",
        "to_address",
        "network",
        "txid",
        "status",
        "memo",
        "metadata",
        "raw",
        "refund_of",
        "created_at",
        "completed_at",
    }


def test_posting_a_changed_amount_changes_nothing(admin_client: Client, make: PaymentMaker) -> None:
    payment = make.completed()
    events = PaymentEvent.objects.filter(payment=payment).count()

    response = admin_client.post(
        change_url(payment),
        {"amount": "1000", "status": "created", "txid": "", "memo": "changed", "_save": "Save"},
    )

    assert response.status_code == 403
    payment.refresh_from_db()
    assert payment.amount == Decimal("3.14")
    assert payment.status == "completed"
    assert payment.memo == "Admin test order"
    assert PaymentEvent.objects.filter(payment=payment).count() == events


def test_no_add(admin_client: Client, make: PaymentMaker) -> None:
    make.approved()
    add_url = reverse("admin:pi_payments_payment_add")

    assert admin_client.get(add_url).status_code == 403
    response = admin_client.post(add_url, {"identifier": "forged", "amount": "1"})
    assert response.status_code == 403
    assert not Payment.objects.filter(identifier="forged").exists()
    changelist = admin_client.get(reverse(CHANGELIST))
    assert add_url not in changelist.content.decode()


def test_no_delete(admin_client: Client, make: PaymentMaker) -> None:
    payment = make.completed()
    delete_url = reverse("admin:pi_payments_payment_delete", args=[payment.pk])

    assert admin_client.get(delete_url).status_code == 403
    assert admin_client.post(delete_url, {"post": "yes"}).status_code == 403
    changelist = admin_client.get(reverse(CHANGELIST))
    assert "delete_selected" not in action_choices(changelist)
    response = admin_client.post(
        reverse(CHANGELIST),
        {"action": "delete_selected", "_selected_action": [payment.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_events_inline_newest_first_and_read_only(admin_client: Client, make: PaymentMaker) -> None:
    payment = make.completed()

    response = admin_client.get(change_url(payment))

    (inline,) = response.context["inline_admin_formsets"]
    kinds = [form.instance.kind for form in inline.formset.forms]
    expected = list(
        PaymentEvent.objects.filter(payment=payment)
        .order_by("-created_at", "-id")
        .values_list("kind", flat=True)
    )
    assert kinds == expected
    assert kinds[0] == "completed"
    assert not inline.has_add_permission
    assert not inline.has_change_permission
    assert not inline.has_delete_permission
    assert not inline.formset.can_delete


def test_view_only_staff_sees_payments_and_events_but_no_action(
    staff_client: Any, make: PaymentMaker
) -> None:
    payment = make.completed()
    client = staff_client("view_payment")

    changelist = client.get(reverse(CHANGELIST))
    change = client.get(change_url(payment))

    assert changelist.status_code == 200
    assert payment.identifier in changelist.content.decode()
    assert changelist.context["action_form"] is None
    (inline,) = change.context["inline_admin_formsets"]
    assert len(inline.formset.forms) == PaymentEvent.objects.filter(payment=payment).count()


def test_staff_without_view_permission_is_refused(staff_client: Any, make: PaymentMaker) -> None:
    payment = make.approved()
    client = staff_client()

    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(change_url(payment)).status_code == 403


def test_pi_user_admin_is_read_only(admin_client: Client, make: PaymentMaker) -> None:
    payment = make.approved()
    pi_user = payment.pi_user
    assert pi_user is not None
    other = make.pioneer()
    changelist = reverse("admin:pi_payments_piuser_changelist")
    change = reverse("admin:pi_payments_piuser_change", args=[pi_user.pk])

    listed = admin_client.get(changelist)
    searched = admin_client.get(changelist, {"q": pi_user.uid})
    by_name = admin_client.get(changelist, {"q": other.username})
    shown = admin_client.get(change)
    posted = admin_client.post(change, {"uid": "forged", "username": "forged", "scopes": "[]"})

    assert listed.status_code == 200
    assert pi_user.uid in listed.content.decode()
    assert list(searched.context["cl"].result_list) == [pi_user]
    assert list(by_name.context["cl"].result_list) == [other]
    assert shown.status_code == 200
    assert 'name="_save"' not in shown.content.decode()
    assert posted.status_code == 403
    pi_user.refresh_from_db()
    assert pi_user.uid != "forged"
    assert admin_client.get(reverse("admin:pi_payments_piuser_add")).status_code == 403
    delete = reverse("admin:pi_payments_piuser_delete", args=[pi_user.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert PiUser.objects.filter(pk=pi_user.pk).exists()
    assert "delete_selected" not in action_choices(listed)


def test_the_newest_payments_are_read_from_an_index_not_by_sorting_the_table() -> None:
    Payment.objects.bulk_create(
        Payment(identifier=f"bulk{number}", amount=Decimal("1.5"), user_uid="u")
        for number in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    page = Payment.objects.all()[:100]  # the admin's first page, in the model's order
    assert "pi_payment_created" in page.explain()


@pytest.mark.parametrize(
    ("changelist", "query"),
    [
        (CHANGELIST, {"status__exact": "\x00"}),
        (CHANGELIST, {"network__exact": "\x00"}),
        (CHANGELIST, {"user_uid": "\x00"}),
        (CHANGELIST, {"q": "\x00"}),
        ("admin:pi_payments_piuser_changelist", {"uid": "\x00"}),
    ],
)
def test_a_nul_character_in_a_list_query_is_an_incorrect_lookup_not_a_500(
    admin_client: Client, make: PaymentMaker, changelist: str, query: dict[str, str]
) -> None:
    """PostgreSQL refuses a NUL in a text value: the list goes back to all rows, as Django does
    for any lookup value it cannot use (e.g. ``created_at__year=abc``)."""
    payment = make.approved()
    url = reverse(changelist)

    response = admin_client.get(url, query)

    assert response.status_code == 302
    assert response["Location"] == f"{url}?e=1"
    listed = admin_client.get(response["Location"])
    assert listed.status_code == 200
    assert len(listed.context["cl"].result_list) == 1
    assert Payment.objects.filter(pk=payment.pk).exists()


def test_the_change_page_lists_the_newest_events_only(
    admin_client: Client, make: PaymentMaker
) -> None:
    """A payer may post a wrong transaction id to the complete callback again and again, each
    time audited: the page stays quick, lists the newest events and says how many there are."""
    payment = make.approved()
    PaymentEvent.objects.bulk_create(
        PaymentEvent(
            payment=payment,
            kind="verification_failed",
            source="callback",
            detail={"code": "txid_mismatch", "txid": f"{number:064x}"},
        )
        for number in range(MAX_EVENTS_SHOWN + 20)
    )
    total = payment.events.count()
    newest = list(
        payment.events.order_by("-created_at", "-id").values_list("pk", flat=True)[
            :MAX_EVENTS_SHOWN
        ]
    )

    response = admin_client.get(change_url(payment))

    assert response.status_code == 200
    (inline,) = response.context["inline_admin_formsets"]
    assert [form.instance.pk for form in inline.formset.forms] == newest
    heading = f"Payment events: the newest {MAX_EVENTS_SHOWN} of {total}"
    assert heading in response.content.decode()


def test_a_few_events_are_all_listed_under_the_usual_heading(
    admin_client: Client, make: PaymentMaker
) -> None:
    payment = make.completed()

    response = admin_client.get(change_url(payment))

    (inline,) = response.context["inline_admin_formsets"]
    assert len(inline.formset.forms) == payment.events.count()
    assert "the newest" not in response.content.decode()


def test_deleting_a_site_user_deletes_its_pi_user_and_keeps_its_payments(
    admin_client: Client, make: PaymentMaker
) -> None:
    """E.g. a user asking to be forgotten: the payments stay, with the Pi uid that made them."""
    payment = make.completed()
    pi_user = payment.pi_user
    assert pi_user is not None
    events = payment.events.count()
    delete = reverse("admin:auth_user_delete", args=[pi_user.user_id])

    page = admin_client.get(delete)
    assert page.status_code == 200
    assert not page.context["perms_lacking"]
    assert admin_client.post(delete, {"post": "yes"}).status_code == 302

    assert not get_user_model().objects.filter(pk=pi_user.user_id).exists()
    assert not PiUser.objects.filter(pk=pi_user.pk).exists()
    payment.refresh_from_db()
    assert payment.pi_user is None
    assert payment.user_uid == pi_user.uid
    assert payment.events.count() == events
    assert admin_client.get(change_url(payment)).status_code == 200
    listed = admin_client.get(reverse(CHANGELIST))
    assert pi_user.uid in listed.content.decode()


def test_deleting_a_site_user_needs_the_permission_to_delete_its_pi_user(
    make: PaymentMaker,
) -> None:
    payment = make.completed()
    pi_user = payment.pi_user
    assert pi_user is not None
    staff = get_user_model().objects.create_user(username="user-admin", is_staff=True)
    staff.user_permissions.set(
        Permission.objects.filter(
            content_type__app_label="auth", codename__in=["view_user", "delete_user"]
        )
    )
    client = Client()
    client.force_login(staff)
    delete = reverse("admin:auth_user_delete", args=[pi_user.user_id])

    page = client.get(delete)

    assert page.context["perms_lacking"] == {"Pi user"}
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert PiUser.objects.filter(pk=pi_user.pk).exists()
