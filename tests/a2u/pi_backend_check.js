// Drives the official Pi Node.js SDK, npm pi-backend@0.1.3, against the sandbox.
//
// Run by test_pi_backend.py: `node pi_backend_check.js '{"baseUrl", "apiKey", "seed", "uid"}'`
// with NODE_PATH pointing at the installed package and HTTPS_PROXY at the sandbox, which
// receives the SDK's hard-coded Horizon calls (PI_PLATFORM_API.md §8.3). Prints one JSON
// document of every answer; on an error prints {"error": ...} to stderr and exits 1.
"use strict";

const PiNetwork = require("pi-backend").default;

async function main() {
  const config = JSON.parse(process.argv[2]);
  const pi = new PiNetwork(config.apiKey, config.seed, { baseUrl: config.baseUrl });
  const result = {};
  result.paymentId = await pi.createPayment({
    amount: 1.5,
    memo: "pi-backend payout",
    metadata: { check: "pi-backend" },
    uid: config.uid,
  });
  result.incompleteBefore = await pi.getIncompleteServerPayments();
  result.txid = await pi.submitPayment(result.paymentId);
  result.completed = await pi.completePayment(result.paymentId, result.txid);
  result.fetched = await pi.getPayment(result.paymentId);
  result.secondId = await pi.createPayment({
    amount: 2,
    memo: "to be cancelled",
    metadata: {},
    uid: config.uid,
  });
  result.incompleteAfter = await pi.getIncompleteServerPayments();
  result.cancelled = await pi.cancelPayment(result.secondId);
  process.stdout.write(JSON.stringify(result));
}

main().catch((error) => {
  const detail = error.response
    ? { status: error.response.status, data: error.response.data }
    : String(error.stack || error);
  process.stderr.write(JSON.stringify({ error: detail }));
  process.exit(1);
});
