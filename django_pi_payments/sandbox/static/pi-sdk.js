/*
 * window.Pi for the django-pi-payments sandbox: the Pi SDK's browser API, played against a local
 * sandbox (python -m django_pi_payments.sandbox) instead of the Pi Browser and the Pi servers.
 *
 * Load it where a Pi app loads https://sdk.minepi.com/pi-sdk.js:
 *
 *     <script src="http://127.0.0.1:8765/sandbox/pi-sdk.js"></script>
 *
 * The sandbox's address is taken from this <script src>. The page then uses the Pi SDK as usual:
 *
 *   Pi.init({version: "2.0", sandbox: true})
 *       Extra options of this script only (the real SDK ignores them): sandboxRetryMs (how often a
 *       callback is invoked again while the app's server has not acted, default 10000),
 *       sandboxPollMs (how often the payment is read from the sandbox, default 500) and
 *       sandboxCompletionTimeoutMs (how long the app has to complete a paid payment, default 60000).
 *   Pi.authenticate(scopes, onIncompletePaymentFound) -> Promise<{accessToken, user: {uid, username}}>
 *       Signs in as a sandbox Pioneer. The first time, a "Pi Wallet" dialog asks which Pioneer
 *       (an existing one or a new username); the choice is remembered in localStorage. Reports the
 *       Pioneer's payment that has a transaction but was not completed by the app to
 *       onIncompletePaymentFound(paymentDTO).
 *   Pi.createPayment({amount, memo, metadata}, {onReadyForServerApproval, onReadyForServerCompletion,
 *                     onCancel, onError})
 *       Creates the payment as the Pioneer, calls onReadyForServerApproval(paymentId) until the
 *       app's server approves it (the sandbox's approval timeout cancels it: onCancel), shows the
 *       "Pi Wallet" dialog, and on Confirm submits the transaction and calls
 *       onReadyForServerCompletion(paymentId, txid) until the server completes it. On Cancel the
 *       Pioneer cancels the payment: onCancel(paymentId). Failures: onError(error, payment?).
 *
 * Test hooks: the dialogs carry data-testid attributes (pi-signin-*, pi-wallet-*) inside an open
 * shadow root, which Playwright's selectors pierce.
 */
(function () {
  "use strict";

  const DEFAULT_SANDBOX_URL = "http://127.0.0.1:8765";
  const SCRIPT_PATH = /\/sandbox\/pi-sdk\.js(?:[?#].*)?$/;
  const PIONEER_KEY = "django-pi-payments:sandbox-pioneer";
  const DEFAULT_OPTIONS = {
    sandboxRetryMs: 10000,
    sandboxPollMs: 500,
    sandboxCompletionTimeoutMs: 60000,
  };

  const script = document.currentScript;
  const SANDBOX_URL =
    script && SCRIPT_PATH.test(script.src) ? script.src.replace(SCRIPT_PATH, "") : DEFAULT_SANDBOX_URL;

  let options = null; // set by Pi.init
  let session = null; // {accessToken, user, scopes, onIncompletePaymentFound} after authenticate

  /** An error answered by the sandbox: `code` is its error code, `payment` a PaymentDTO if sent. */
  class SandboxError extends Error {
    constructor(message, code, payment) {
      super(message);
      this.name = "PiSandboxError";
      this.code = code;
      this.payment = payment || null;
    }
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  /** Call the sandbox's control API; resolve to the JSON answer, reject with SandboxError. */
  async function control(method, path, body, accessToken) {
    const init = { method, headers: { Accept: "application/json" } };
    if (body !== undefined) {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    if (accessToken) {
      init.headers.Authorization = "Bearer " + accessToken;
    }
    const response = await fetch(SANDBOX_URL + path, init);
    const data = await response.json().catch(() => null);
    if (!response.ok) {
      const message = (data && data.error_message) || "The Pi sandbox answered HTTP " + response.status;
      throw new SandboxError(message, data && data.error, data && data.payment);
    }
    return data;
  }

  const paymentPath = (identifier) => "/sandbox/payments/" + encodeURIComponent(identifier);

  /** Run an app callback; a throw or a rejected promise is logged, never propagated. */
  function invoke(name, callback, ...args) {
    if (typeof callback !== "function") {
      return;
    }
    try {
      Promise.resolve(callback(...args)).catch((error) => console.warn("[Pi sandbox]", name, "failed:", error));
    } catch (error) {
      console.warn("[Pi sandbox]", name, "failed:", error);
    }
  }

  // --- the "Pi Wallet" dialogs ----------------------------------------------------------------

  const STYLE = `
    :host { all: initial; }
    .backdrop { position: fixed; inset: 0; z-index: 2147483647; display: flex; align-items: flex-end;
      justify-content: center; background: rgba(20, 10, 30, 0.55);
      font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #2d1b3d; }
    .sheet { width: min(420px, 100vw); background: #fff; border-radius: 18px 18px 0 0;
      box-shadow: 0 -6px 30px rgba(0, 0, 0, 0.3); padding: 18px 22px 22px; box-sizing: border-box; }
    header { display: flex; align-items: center; gap: 10px; margin-bottom: 14px; font-weight: 600; }
    .logo { display: inline-grid; place-items: center; width: 30px; height: 30px; border-radius: 50%;
      background: #703d92; color: #fbb44a; font-weight: 700; }
    .badge { margin-left: auto; font-size: 11px; font-weight: 600; letter-spacing: 0.04em;
      text-transform: uppercase; color: #703d92; background: #f1e8f7; border-radius: 999px; padding: 3px 9px; }
    h2 { font-size: 17px; margin: 0 0 6px; }
    p { margin: 0 0 10px; }
    .amount { font-size: 30px; font-weight: 700; color: #703d92; margin: 4px 0; }
    .memo { color: #5b4a68; }
    dl { display: grid; grid-template-columns: auto 1fr; gap: 4px 12px; margin: 8px 0 12px;
      font-size: 13px; color: #5b4a68; }
    dd { margin: 0; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .status { min-height: 1.4em; font-size: 13px; color: #5b4a68; }
    .actions { display: flex; gap: 10px; margin-top: 14px; }
    button { flex: 1; font: inherit; font-weight: 600; border-radius: 10px; padding: 11px 14px;
      cursor: pointer; border: 1px solid #d6c6e2; background: #fff; color: #703d92; }
    button.primary { background: #703d92; border-color: #703d92; color: #fff; }
    button:disabled { opacity: 0.45; cursor: default; }
    .pioneers { display: flex; flex-wrap: wrap; gap: 6px; margin: 0 0 12px; }
    .pioneers button { flex: 0 0 auto; padding: 6px 12px; font-size: 13px; }
    label { display: block; font-size: 13px; margin-bottom: 4px; color: #5b4a68; }
    input { width: 100%; box-sizing: border-box; font: inherit; padding: 10px 12px; border-radius: 10px;
      border: 1px solid #d6c6e2; }
  `;

  /** Create an element with attributes and text (never HTML: memos and names are untrusted). */
  function element(tag, attributes, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes || {})) {
      node.setAttribute(name, value);
    }
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  /** Mount a bottom sheet in its own shadow root; return {host, sheet}. */
  function openSheet(testId, title) {
    const host = element("div", { "data-pi-sandbox": testId });
    const root = host.attachShadow({ mode: "open" });
    root.appendChild(element("style", {}, STYLE));
    const backdrop = element("div", { class: "backdrop" });
    const sheet = element("div", {
      class: "sheet",
      role: "dialog",
      "aria-modal": "true",
      "aria-label": title,
      "data-testid": testId,
    });
    const header = element("header");
    header.append(element("span", { class: "logo" }, "π"), element("span", {}, "Pi Wallet"));
    header.append(element("span", { class: "badge" }, "Sandbox"));
    sheet.appendChild(header);
    backdrop.appendChild(sheet);
    root.appendChild(backdrop);
    document.body.appendChild(host);
    return { host, sheet };
  }

  /** Ask which Pioneer signs in; resolve to a username, or null when declined. */
  function askPioneer(knownUsernames, scopes) {
    return new Promise((resolve) => {
      const { host, sheet } = openSheet("pi-signin-dialog", "Sign in with Pi");
      const finish = (username) => {
        host.remove();
        resolve(username);
      };
      sheet.append(
        element("h2", {}, "Sign in with Pi"),
        element("p", {}, location.host + " asks for: " + scopes.join(", ") + ".")
      );
      if (knownUsernames.length) {
        const list = element("div", { class: "pioneers" });
        for (const username of knownUsernames) {
          const button = element("button", { type: "button", "data-testid": "pi-signin-pioneer" }, "@" + username);
          button.addEventListener("click", () => finish(username));
          list.appendChild(button);
        }
        sheet.append(element("p", {}, "Continue as:"), list);
      }
      const form = element("form");
      const input = element("input", {
        id: "pi-signin-username",
        "data-testid": "pi-signin-username",
        name: "username",
        autocomplete: "off",
        maxlength: "64",
        required: "",
        placeholder: "a new or existing username",
      });
      const actions = element("div", { class: "actions" });
      const cancel = element("button", { type: "button", id: "pi-signin-cancel", "data-testid": "pi-signin-cancel" }, "Cancel");
      const submit = element(
        "button",
        { type: "submit", class: "primary", id: "pi-signin-submit", "data-testid": "pi-signin-submit" },
        "Sign in"
      );
      actions.append(cancel, submit);
      form.append(element("label", { for: "pi-signin-username" }, "Sandbox Pioneer"), input, actions);
      sheet.appendChild(form);
      cancel.addEventListener("click", () => finish(null));
      form.addEventListener("submit", (event) => {
        event.preventDefault();
        const username = input.value.trim();
        if (username) {
          finish(username);
        }
      });
      input.focus();
    });
  }

  /** The payment sheet: amount, memo, status line, Confirm and Cancel. */
  class WalletDialog {
    constructor(payment, username) {
      const { host, sheet } = openSheet("pi-wallet-dialog", "Pi Wallet payment");
      this.host = host;
      this.cancelRequested = false;
      this.choice = null; // resolves to "confirm" or "cancel"
      this.status = element("p", { class: "status", role: "status", "data-testid": "pi-wallet-status" });
      this.confirm = element(
        "button",
        { type: "button", class: "primary", id: "pi-wallet-confirm", "data-testid": "pi-wallet-confirm", disabled: "" },
        "Confirm"
      );
      this.cancel = element("button", { type: "button", id: "pi-wallet-cancel", "data-testid": "pi-wallet-cancel" }, "Cancel");
      const details = element("dl");
      details.append(
        element("dt", {}, "From"),
        element("dd", {}, "@" + username),
        element("dt", {}, "To"),
        element("dd", {}, payment.to_address),
        element("dt", {}, "Network"),
        element("dd", {}, payment.network)
      );
      const actions = element("div", { class: "actions" });
      actions.append(this.cancel, this.confirm);
      sheet.append(
        element("p", { class: "amount", "data-testid": "pi-wallet-amount" }, payment.amount + " π"),
        element("p", { class: "memo", "data-testid": "pi-wallet-memo" }, payment.memo),
        details,
        this.status,
        actions
      );
      this.chosen = new Promise((resolve) => {
        this.confirm.addEventListener("click", () => resolve("confirm"));
        this.cancel.addEventListener("click", () => {
          this.cancelRequested = true;
          resolve("cancel");
        });
      });
      this.say("Waiting for the app to approve the payment…");
    }

    say(text) {
      this.status.textContent = text;
    }

    /** Approved: let the Pioneer choose. */
    ready() {
      this.confirm.disabled = false;
      this.say("Confirm to pay with your sandbox wallet.");
    }

    /** The Pioneer has chosen (or paid): no button works any more. */
    busy(text) {
      this.confirm.disabled = true;
      this.cancel.disabled = true;
      this.say(text);
    }

    close() {
      this.host.remove();
    }
  }

  // --- the flows ------------------------------------------------------------------------------

  function rememberedPioneer() {
    try {
      const pioneer = JSON.parse(localStorage.getItem(PIONEER_KEY));
      return pioneer && typeof pioneer.uid === "string" ? pioneer : null;
    } catch (error) {
      return null;
    }
  }

  /** The sandbox user who signs in, with the requested scopes granted. */
  async function signInPioneer(scopes) {
    const remembered = rememberedPioneer();
    if (remembered) {
      // Upsert by uid: the sandbox may have been reset since this Pioneer was remembered.
      return control("POST", "/sandbox/users", { uid: remembered.uid, username: remembered.username, scopes });
    }
    const known = await control("GET", "/sandbox/users");
    const username = await askPioneer(
      known.map((user) => user.username),
      scopes
    );
    if (username === null) {
      throw new Error("The Pioneer declined to sign in.");
    }
    const existing = known.find((user) => user.username === username);
    const user = await control("POST", "/sandbox/users", existing ? { uid: existing.uid, scopes } : { username, scopes });
    try {
      localStorage.setItem(PIONEER_KEY, JSON.stringify({ uid: user.uid, username: user.username }));
    } catch (error) {
      console.warn("[Pi sandbox] cannot remember the Pioneer (no localStorage):", error);
    }
    return user;
  }

  async function authenticate(scopes, onIncompletePaymentFound) {
    if (!options) {
      throw new Error("Call Pi.init() before Pi.authenticate().");
    }
    if (!Array.isArray(scopes) || !scopes.every((scope) => typeof scope === "string")) {
      throw new TypeError("Pi.authenticate(scopes, onIncompletePaymentFound): scopes must be an array of strings.");
    }
    const user = await signInPioneer(scopes);
    const token = await control("POST", "/sandbox/tokens", { uid: user.uid });
    session = { accessToken: token.access_token, user, scopes, onIncompletePaymentFound };
    const incomplete = await control("GET", "/sandbox/payments/incomplete", undefined, token.access_token);
    if (incomplete.exists) {
      invoke("onIncompletePaymentFound", onIncompletePaymentFound, incomplete.payment);
    }
    const username = scopes.includes("username") ? user.username : "";
    return { accessToken: token.access_token, user: { uid: user.uid, username } };
  }

  /**
   * Invoke `callback` now and again every sandboxRetryMs until `done(payment)`, the payment is
   * cancelled, the Pioneer cancels in the dialog or `deadline` (ms since epoch) passes; resolve to
   * the last PaymentDTO read.
   */
  async function untilServerActs(payment, callback, done, dialog, deadline) {
    let latest = payment;
    let nextCall = 0;
    for (;;) {
      if (Date.now() >= nextCall) {
        callback();
        nextCall = Date.now() + options.sandboxRetryMs;
      }
      await sleep(options.sandboxPollMs);
      if (dialog.cancelRequested) {
        return latest;
      }
      latest = await control("GET", paymentPath(payment.identifier));
      if (done(latest) || latest.status.cancelled || Date.now() >= deadline) {
        return latest;
      }
    }
  }

  async function runPayment(paymentData, callbacks) {
    let payment;
    try {
      payment = await control("POST", "/sandbox/payments", {
        access_token: session.accessToken,
        amount: paymentData.amount,
        memo: paymentData.memo,
        metadata: paymentData.metadata || {},
      });
    } catch (error) {
      if (error.code === "ongoing_payment_found" && error.payment) {
        // As the Pi SDK does: the blocking payment is reported, the new one fails.
        const onIncomplete = callbacks.onIncompletePaymentFound || session.onIncompletePaymentFound;
        invoke("onIncompletePaymentFound", onIncomplete, error.payment);
      }
      invoke("onError", callbacks.onError, error);
      return;
    }
    const identifier = payment.identifier;
    const dialog = new WalletDialog(payment, session.user.username);
    try {
      payment = await untilServerActs(
        payment,
        () => invoke("onReadyForServerApproval", callbacks.onReadyForServerApproval, identifier),
        (latest) => latest.status.developer_approved,
        dialog,
        Infinity // the sandbox's approval timeout cancels the payment
      );
      if (!dialog.cancelRequested && !payment.status.cancelled) {
        dialog.ready();
        await dialog.chosen;
      }
      if (dialog.cancelRequested) {
        dialog.busy("Cancelling…");
        payment = await control("POST", paymentPath(identifier) + "/user_cancel");
      }
      if (payment.status.cancelled) {
        dialog.close();
        invoke("onCancel", callbacks.onCancel, identifier);
        return;
      }
      dialog.busy("Submitting the transaction…");
      const submitted = await control("POST", paymentPath(identifier) + "/transaction", {});
      dialog.say("Paid. Waiting for the app to complete the payment…");
      payment = await untilServerActs(
        submitted.payment,
        () => invoke("onReadyForServerCompletion", callbacks.onReadyForServerCompletion, identifier, submitted.txid),
        (latest) => latest.status.developer_completed,
        dialog,
        Date.now() + options.sandboxCompletionTimeoutMs
      );
      dialog.close();
      if (!payment.status.developer_completed) {
        invoke("onError", callbacks.onError, new Error("The app did not complete the payment in time."), payment);
      }
    } catch (error) {
      dialog.close();
      if (error.code === "cancelled_payment") {
        // The app (or its admin) cancelled it while the Pioneer was deciding.
        invoke("onCancel", callbacks.onCancel, identifier);
      } else {
        invoke("onError", callbacks.onError, error, payment);
      }
    }
  }

  function createPayment(paymentData, callbacks) {
    const names = ["onReadyForServerApproval", "onReadyForServerCompletion", "onCancel", "onError"];
    const missing = names.filter((name) => !callbacks || typeof callbacks[name] !== "function");
    if (missing.length) {
      throw new TypeError("Pi.createPayment: missing callbacks: " + missing.join(", ") + ".");
    }
    if (!session) {
      invoke("onError", callbacks.onError, new Error("Call Pi.authenticate() before Pi.createPayment()."));
    } else if (!session.scopes.includes("payments")) {
      invoke("onError", callbacks.onError, new Error('Cannot create a payment without "payments" scope.'));
    } else {
      runPayment(paymentData || {}, callbacks);
    }
  }

  function init(config) {
    if (!config || typeof config.version !== "string") {
      throw new TypeError('Pi.init({version: "2.0", sandbox}): version is required.');
    }
    options = Object.assign({}, DEFAULT_OPTIONS, config);
    return Promise.resolve();
  }

  window.Pi = Object.freeze({ init, authenticate, createPayment });
})();
