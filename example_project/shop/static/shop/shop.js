/*
 * The shop's Pi frontend. It uses nothing but the Pi SDK's browser API, so the same code runs in
 * the Pi Browser with https://sdk.minepi.com/pi-sdk.js and locally with the sandbox's
 * /sandbox/pi-sdk.js. The payment callbacks post to django-pi-payments (mounted at /pi_payment/)
 * with the bodies pi-sdk-js sends; only the shop's own endpoint needs the CSRF token.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("shop-config").textContent);
  const message = document.getElementById("message");
  const buyButtons = document.querySelectorAll("button.buy");
  let signingIn = null; // the promise of the current Pi sign-in

  function show(text) {
    message.textContent = text;
    message.hidden = !text;
  }

  function fail(error) {
    show(error && error.message ? error.message : String(error));
  }

  /** Show the error, then rethrow it: the Pi SDK sees the callback fail and calls it again. */
  function showAndRethrow(error) {
    fail(error);
    throw error;
  }

  /** While a purchase is under way the Buy buttons are disabled: one click, one order. */
  function setBuying(buying) {
    for (const button of buyButtons) {
      button.disabled = buying;
    }
  }

  /** The purchase failed: say why, and let the buyer try again. */
  function buyingFailed(error) {
    setBuying(false);
    fail(error);
  }

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  /** POST JSON; resolve to the JSON answer, reject with the server's detail. */
  async function post(url, body, { csrf = false } = {}) {
    const headers = { "Content-Type": "application/json", Accept: "application/json" };
    if (csrf) {
      headers["X-CSRFToken"] = csrfToken(); // read each time: signing in rotates it
    }
    const response = await fetch(url, {
      method: "POST",
      headers,
      body: JSON.stringify(body),
      credentials: "same-origin",
    });
    const data = await response.json().catch(() => ({}));
    if (!response.ok) {
      throw new Error(data.detail || data.error || "HTTP " + response.status);
    }
    return data;
  }

  /** Pi reports a payment the user paid but the shop never completed: let the server settle it. */
  function onIncompletePaymentFound(payment) {
    return post("/pi_payment/incomplete", {
      paymentId: payment.identifier,
      transactionId: payment.transaction ? payment.transaction.txid : null,
    }).catch(showAndRethrow);
  }

  const FINAL_STATUSES = ["completed", "cancelled", "user_cancelled"];
  const STILL_CONFIRMING =
    "Your last payment is still being confirmed by Pi Network. Try again in a minute.";

  /**
   * The answer of /pi_payment/incomplete (`{"payment": ...}`) holds the Pioneer's transaction, but
   * Pi has not verified it yet: until it does, Pi refuses a new payment (the server completes this
   * one once it has).
   */
  function stillConfirming(settled) {
    const payment = settled && settled.payment;
    return Boolean(payment && payment.txid && !FINAL_STATUSES.includes(payment.status));
  }

  /**
   * Authenticate with Pi and log the Django session in as that Pioneer (if it is not already).
   * A payment Pi reports as incomplete is settled first: until it is, Pi refuses a new payment.
   * `unfinished` is the server's answer about that payment, if Pi reported one.
   */
  async function authenticate() {
    let settling = null;
    const auth = await Pi.authenticate(["payments", "username"], (payment) => {
      settling = onIncompletePaymentFound(payment);
      return settling;
    });
    const sessionChanged = auth.user.uid !== config.piUid;
    if (sessionChanged) {
      await post("/pi_payment/auth", { accessToken: auth.accessToken });
    }
    const unfinished = await settling;
    return { auth, sessionChanged, unfinished };
  }

  function signIn() {
    if (!signingIn) {
      signingIn = authenticate().catch((error) => {
        signingIn = null;
        throw error;
      });
    }
    return signingIn;
  }

  async function buy(productId) {
    const { auth, unfinished } = await signIn();
    if (stillConfirming(unfinished)) {
      signingIn = null; // the next click authenticates again, and Pi reports the payment again
      throw new Error(STILL_CONFIRMING);
    }
    const order = await post(config.orderUrl, { product_id: productId }, { csrf: true });
    Pi.createPayment(
      { amount: Number(order.amount), memo: order.memo, metadata: { order_id: order.order_id } },
      {
        // Every answer is shown: an error stays on the page (the Pi SDK calls again in a while),
        // a success clears it or moves on to the order's page.
        onReadyForServerApproval(paymentId) {
          return post("/pi_payment/approve", { paymentId, accessToken: auth.accessToken }).then(
            () => show(""),
            showAndRethrow
          );
        },
        onReadyForServerCompletion(paymentId, txid) {
          return post("/pi_payment/complete", { paymentId, transactionId: txid }).then(
            () => location.assign(order.url),
            showAndRethrow
          );
        },
        onCancel(paymentId) {
          return post("/pi_payment/cancel", { paymentId }).then(() => location.assign(order.url), buyingFailed);
        },
        onError(error, payment) {
          buyingFailed(error);
          if (payment) {
            const text = error && error.message ? error.message : String(error);
            post("/pi_payment/error", { paymentId: payment.identifier, error: text }).catch(fail);
          }
        },
      }
    );
  }

  Pi.init({ version: "2.0", sandbox: config.sandbox });

  const signInButton = document.getElementById("sign-in");
  if (signInButton) {
    signInButton.addEventListener("click", () => {
      show("");
      signIn()
        .then(() => location.reload())
        .catch(fail);
    });
  }
  for (const button of buyButtons) {
    button.addEventListener("click", () => {
      setBuying(true);
      show("");
      buy(Number(button.dataset.productId)).catch(buyingFailed);
    });
  }
  // Back from an order's page, the browser may restore this page as it was left: buttons disabled.
  window.addEventListener("pageshow", (event) => event.persisted && setBuying(false));
  if (config.piUid) {
    // Signed in: authenticate again (silently in the Pi Browser) to hold an access token and to
    // hear of an incomplete payment; reload if the Pi Browser's user is someone else now.
    signIn()
      .then(({ sessionChanged, unfinished }) => {
        if (sessionChanged) {
          location.reload();
        } else if (stillConfirming(unfinished)) {
          signingIn = null; // Buy asks Pi again
          show(STILL_CONFIRMING);
        }
      })
      .catch(fail);
  }
})();
