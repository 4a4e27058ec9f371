// Cartesi's own TypeScript JSON-RPC client (@cartesi/rpc) reading a node: node cartesi_rpc_client.mjs <dist/index.js> <rpc url> <app>
// Prints what it read as JSON; a call that fails (other than the expected not-found) exits non-zero.
import { pathToFileURL } from "node:url";

const [clientPath, uri, application] = process.argv.slice(2);
const { createClient } = await import(pathToFileURL(clientPath).href);
const client = createClient({ uri });

const chainId = (await client.request("cartesi_getChainId")).data;
const app = (await client.request("cartesi_getApplication", { application })).data;
const inputs = (await client.request("cartesi_listInputs", { application })).data;
const input1 = (await client.request("cartesi_getInput", { application, input_index: "0x1" })).data;
const vouchers = (await client.request("cartesi_listOutputs", { application, output_type: "0x237a816f" })).data;
const epoch = (await client.request("cartesi_getEpoch", { application, epoch_index: "0x1" })).data;
const tournaments = (await client.request("cartesi_listTournaments", { application })).data;
let missingInputCode = null;
try {
  await client.request("cartesi_getInput", { application, input_index: "0x99" });
} catch (err) {
  missingInputCode = err.code;
}
console.log(JSON.stringify({
  chainId, application: app.iapplication_address, consensus: app.consensus_type, state: app.state,
  reason: app.reason,
  inputs: inputs.map((i) => i.index), input1: input1.status,
  voucherDestination: vouchers[0].decoded_data.destination, epochRoot: epoch.outputs_merkle_root,
  tournaments, missingInputCode,
}));
