"""``PiExceptionReporterFilter`` and ``sensitive_variables`` keep the secrets out of error reports
(the DEBUG page and ``mail_admins`` emails): the wallet seed, the API key and access tokens."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import RequestFactory
from django.views.debug import SafeExceptionReporterFilter
from stellar_sdk import Keypair

from django_pi_payments.a2u import SubmissionFailed, Wallet, WalletNotConfigured
from django_pi_payments.debug import PiExceptionReporterFilter

from .reporting import DJANGO_FILTER, PI_FILTER, report, reporter, reporter_filter

HIDDEN = SafeExceptionReporterFilter.cleansed_substitute


def settings_report(dotted_path: str) -> str:
    """The report, with the filter ``dotted_path``, of an error unrelated to Pi."""
    with reporter_filter(dotted_path):
        try:
            raise RuntimeError("unrelated")
        except RuntimeError as exc:
            return report(exc, RequestFactory().get("/"))


def test_filter_hides_the_seed_and_the_key_in_settings(settings):
    seed, api_key = Keypair.random().secret, "s3rverApiKey0123456789abcdef"
    settings.PI_PAYMENTS = {**settings.PI_PAYMENTS, "API_KEY": api_key}
    settings.PI_PAYMENTS["WALLET_PRIVATE_SEED"] = seed
    text = settings_report(PI_FILTER)
    assert "WALLET_PRIVATE_SEED" in text
    assert seed not in text
    assert api_key not in text
    # What the filter is for: Django's own shows the seed, whose name it does not know.
    assert seed in settings_report(DJANGO_FILTER)


@pytest.mark.parametrize("header", ["HTTP_AUTHORIZATION", "HTTP_X_WALLET_SEED"])
def test_filter_hides_authorization_and_seed_headers(header):
    request = RequestFactory().get("/", **{header: "Bearer t0kenValue0123456789"})
    meta = PiExceptionReporterFilter().get_safe_request_meta(request)
    assert meta[header] == HIDDEN
    assert meta["PATH_INFO"] == "/"


def test_filter_keeps_django_s_hidden_names():
    cleansed = PiExceptionReporterFilter().cleanse_setting("DATABASE_PASSWORD", "hunter2")
    assert cleansed == HIDDEN


def _with_bad_checksum(seed: str) -> str:
    return seed[:-1] + ("B" if seed[-1] == "A" else "A")


def test_an_invalid_seed_is_not_in_the_report():
    seed = _with_bad_checksum(Keypair.random().secret)
    with pytest.raises(WalletNotConfigured) as caught:
        Wallet(seed)
    text = report(caught.value)
    assert "in __init__" in text
    assert seed not in text


def test_signing_frames_show_no_variable():
    seed = Keypair.random().secret
    wallet = Wallet(seed)
    with pytest.raises(SubmissionFailed) as caught:
        wallet.sign_payment(
            sequence=1,
            base_fee=100000,
            network="Pi Testnet",
            destination=Keypair.random().public_key,
            amount=Decimal("1"),
            memo="a memo far longer than the twenty-eight bytes Stellar allows",
            max_time=2_000_000_000,
        )
    found = reporter(caught.value)
    frames = found.get_traceback_frames()
    signing = [frame for frame in frames if frame["function"] == "sign_payment"]
    beneath = [frame for frame in frames if "stellar_sdk" in frame["filename"]]
    assert signing and beneath
    for frame in signing + beneath:
        values = [
            value
            for name, value in found.filter.get_traceback_frame_variables(
                None, frame["tb"].tb_frame
            )
        ]
        assert values and all(value == HIDDEN for value in values), frame["function"]
    assert seed not in found.get_traceback_text() + found.get_traceback_html()
