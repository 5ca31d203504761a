"""Everything that holds in one process holds across processes on one PostgreSQL and one Redis."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections import Counter

import pytest
import requests
from stellar_sdk import Keypair

from django_pi_payments import services
from django_pi_payments.auth import verify_access_token
from django_pi_payments.models import Payment, PaymentEvent, PaymentStatus

pytestmark = pytest.mark.postgres

CONCURRENT_COMPLETES = 16
STUCK_PAYMENTS = 200


def test_concurrent_completes_across_two_instances(app_servers, cluster, pi_sandbox):
    user, token = pi_sandbox.login(username="racer")
    identifier = pi_sandbox.create_payment(user["uid"], "4.2", memo="race")["identifier"]
    approve = requests.post(
        f"{app_servers[0]}/pi_payment/approve",
        json={"paymentId": identifier, "accessToken": token},
        timeout=30,
    )
    assert approve.status_code == 200, approve.text
    txid = pi_sandbox.submit_transaction(identifier)["txid"]
    pi_sandbox.clear_calls()
    barrier = threading.Barrier(CONCURRENT_COMPLETES)
    statuses: list[int] = []

    def complete(index: int) -> None:
        with requests.Session() as session:
            barrier.wait()
            response = session.post(
                f"{app_servers[index % 2]}/pi_payment/complete",
                json={"paymentId": identifier, "transactionId": txid},
                timeout=60,
            )
            statuses.append(response.status_code)

    threads = [threading.Thread(target=complete, args=(i,)) for i in range(CONCURRENT_COMPLETES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200] * CONCURRENT_COMPLETES
    assert cluster.signals()[("completed", identifier)] == 1
    accepted = [c for c in pi_sandbox.calls("complete") if c["status"] == 200]
    assert len(accepted) == 1
    assert (
        PaymentEvent.objects.filter(payment__identifier=identifier, kind="completed").count() == 1
    )


def test_token_verified_on_one_instance_is_warm_on_the_other(app_servers, pi_sandbox):
    _user, token = pi_sandbox.login(username="traveller")
    headers = {"Authorization": f"Bearer {token}"}
    first = requests.get(f"{app_servers[0]}/pi_payment/me", headers=headers, timeout=30)
    assert first.status_code == 200, first.text
    assert len(pi_sandbox.calls("me")) == 1
    pi_sandbox.clear_calls()
    second = requests.get(f"{app_servers[1]}/pi_payment/me", headers=headers, timeout=30)
    assert second.status_code == 200
    assert second.json()["uid"] == first.json()["uid"]
    assert pi_sandbox.calls("me") == []


def _stuck_payments(pi_sandbox) -> tuple[list[str], list[str]]:
    """Half paid but never completed, half approved and never paid."""
    paid: list[str] = []
    unpaid: list[str] = []
    for index in range(STUCK_PAYMENTS):
        user, token = pi_sandbox.login(username=f"pioneer{index}")
        identifier = pi_sandbox.create_payment(user["uid"], "1.5", memo="stuck")["identifier"]
        services.approve(identifier, verify_access_token(token))
        if index % 2 == 0:
            pi_sandbox.submit_transaction(identifier)
            paid.append(identifier)
        else:
            unpaid.append(identifier)
    return paid, unpaid


def test_two_reconcile_processes_act_once_per_payment(cluster, pi_sandbox):
    paid, unpaid = _stuck_payments(pi_sandbox)
    events_before = Counter(PaymentEvent.objects.values_list("payment__identifier", flat=True))
    pi_sandbox.clear_calls()
    argv = (
        "pi_reconcile",
        "--skip-checks",
        "--older-than",
        "0",
        "--cancel-unpaid",
        "--workers",
        "8",
        "--json",
    )
    runs = [cluster.manage(*argv), cluster.manage(*argv)]
    outputs = [run.communicate(timeout=300) for run in runs]
    for run, (_out, err) in zip(runs, outputs, strict=True):
        assert run.returncode == 0, err
    documents = [json.loads(out) for out, _err in outputs]

    acting = {"complete", "cancel", "mark_completed", "mark_cancelled", "sync"}
    actions = Counter(
        entry["identifier"]
        for document in documents
        for entry in document["payments"]
        if entry["action"] in acting
    )
    assert set(actions) == set(paid) | set(unpaid)
    assert set(actions.values()) == {1}
    events_after = Counter(PaymentEvent.objects.values_list("payment__identifier", flat=True))
    assert {i: events_after[i] - events_before[i] for i in paid + unpaid} == {
        i: 1 for i in paid + unpaid
    }
    signals = cluster.signals()
    assert {i: signals[("completed", i)] for i in paid} == {i: 1 for i in paid}
    assert {i: signals[("cancelled", i)] for i in unpaid} == {i: 1 for i in unpaid}
    statuses = dict(Payment.objects.values_list("identifier", "status"))
    assert {statuses[i] for i in paid} == {PaymentStatus.COMPLETED}
    assert {statuses[i] for i in unpaid} == {PaymentStatus.CANCELLED}
    assert len([c for c in pi_sandbox.calls("complete") if c["status"] == 200]) == len(paid)
    assert len([c for c in pi_sandbox.calls("cancel") if c["status"] == 200]) == len(unpaid)
    print(
        f"reconcile over {STUCK_PAYMENTS} payments in 2 processes: "
        f"actions per payment {sorted(set(actions.values()))}, "
        f"runs' counts {[d['counts'] for d in documents]}"
    )


def test_check_deploy_warns_about_a_process_local_cache(cluster):
    without_redis = {k: v for k, v in cluster.env.items() if k != "REDIS_URL"}
    assert "pi_payments.W002" in cluster.run("check", "--deploy", env=without_redis)
    assert "pi_payments.W002" not in cluster.run("check", "--deploy")


PAYOUTS_PER_PROCESS = 4


def test_two_processes_sending_payouts_are_serialized(cluster, pi_sandbox, watched_secrets):
    wallet = Keypair.random()
    watched_secrets.add(wallet.secret)
    pi_sandbox.add_account(wallet.public_key, balance=100000)
    pi_sandbox.set_config(app_wallet_address=wallet.public_key)
    cluster.env["PI_WALLET_SEED"] = wallet.secret
    payees = [pi_sandbox.create_user(username=f"payee{i}")["uid"] for i in range(2)]
    pi_sandbox.clear_calls()
    sends = " && ".join(
        f'"{sys.executable}" -m django pi_send --skip-checks --uid "$PAYEE" --amount 0.5 '
        f"--memo payout{n}"
        for n in range(PAYOUTS_PER_PROCESS)
    )
    processes = [
        subprocess.Popen(
            ["bash", "-c", sends],
            env={**cluster.env, "PAYEE": payee},
            cwd=cluster.env["PYTHONPATH"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for payee in payees
    ]
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_out, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err
        assert "ongoing_payment_found" not in err
    payouts = Payment.objects.filter(direction="app_to_user")
    assert payouts.count() == 2 * PAYOUTS_PER_PROCESS
    assert set(payouts.values_list("status", flat=True)) == {PaymentStatus.COMPLETED}
    ledger = Counter(tx["memo"] for tx in pi_sandbox.ledger() if tx["memo"])
    assert {p.identifier: ledger[p.identifier] for p in payouts} == {
        p.identifier: 1 for p in payouts
    }
    refused = [c for c in pi_sandbox.calls("create_payment") if c["status"] != 200]
    assert refused == []
    assert wallet.secret not in "".join(out + err for out, err in outputs)
