// Cartesi's viem extension (@cartesi/viem) reading a node:
// node cartesi_viem_client.mjs <contracts-config/node_modules> <rpc url> <app>
// Prints what it read as JSON; a call that fails (other than the expected not-found) exits non-zero.
import { pathToFileURL } from "node:url";

const [modules, uri, application] = process.argv.slice(2);
const load = (name) => import(pathToFileURL(`${modules}/${name}`).href);
const { createCartesiPublicClient } = await load("@cartesi/viem/dist/index.js");
const { http } = await load("viem/_esm/index.js");
const client = createCartesiPublicClient({ transport: http(uri) });
const text = (value) => JSON.parse(JSON.stringify(value, (_, v) => (typeof v === "bigint" ? v.toString() : v)));

const chainId = await client.getChainId();
const app = await client.getApplication({ application });
const inputs = await client.listInputs({ application });
const input1 = await client.getInput({ application, inputIndex: 1n });
const outputs = await client.listOutputs({ application });
const epoch = await client.getEpoch({ application, epochIndex: 1n });
const tournaments = await client.listTournaments({ application });
const processed = await client.getProcessedInputCount({ application });
let missingInput = null;
try {
  await client.getInput({ application, inputIndex: 153n });
} catch (err) {
  missingInput = err.code ?? err.cause?.code ?? String(err).slice(0, 200);
}
console.log(JSON.stringify(text({
  chainId, application: app.applicationAddress ?? app.iapplication_address, inputs: inputs.data.map((i) => i.index),
  input1: input1.status, outputs: outputs.data.length, epochRoot: epoch.outputsMerkleRoot ?? epoch.outputs_merkle_root,
  tournaments: tournaments.data, processed, missingInput,
})));
