// Mean NLL of a GGUF under a real llama.cpp (node-llama-cpp 3.21.1's prebuilt CPU library), with
// Quarry's evaluation protocol (core/include/quarry/eval.h): every window is a fresh sequence
// from position 0, tokens 1..L-1 are scored from their prefix (the first is not), the mean is
// over all scored tokens. The token ids come from the caller (Quarry's tokenizer), so both sides
// score the same ids; llama.cpp's tokenizer is not used.
//
//   node llama_cpp_nll.mjs MODEL.gguf WINDOWS.json [--threads N]
//   node llama_cpp_nll.mjs --check      (loads the library only; prints {"llama_cpp": "release"})
//   WINDOWS.json: {"windows": [[id, ...], ...]}
//   stdout: {"mean_nll": x, "windows": n, "scored_tokens": m, "window_nll": [...],
//            "candidates": c, "llama_cpp": "release"}
//
// Probabilities: LlamaContextSequence.controlledEvaluate with generateNext.probabilities runs
// the sampler chain and returns softmax(logits) over the candidates that remain. With
// temperature 0 node-llama-cpp's chain is the greedy sampler alone (llama/addon/AddonSampler.cpp
// rebuildChainIfNeeded: top-k / top-p / min-p are only added when temperature > 0; no repeat
// penalty, token bias or grammar unless asked), which picks a token without touching the
// logits, so the returned map is the plain softmax over the whole vocabulary (AddonContext.cpp
// SampleToken: exp(logit - max) / sum). "candidates" reports the smallest map seen so the
// caller can check it is the whole vocabulary.
import fs from "node:fs";
import process from "node:process";
import {getLlama, LlamaLogLevel} from "node-llama-cpp";

function usage(msg) {
  process.stderr.write(`llama_cpp_nll: ${msg}\nusage: node llama_cpp_nll.mjs MODEL.gguf WINDOWS.json [--threads N]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
// (A script file, not `node -e`: node-llama-cpp tests its binary in a child process that
// inherits node's own arguments.)
if (args.length === 1 && args[0] === "--check") {
  const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
  const r = llama.llamaCppRelease ?? {};
  process.stdout.write(JSON.stringify({llama_cpp: `${r.repo ?? "?"}@${r.release ?? "?"}`}) + "\n");
  await llama.dispose();
  process.exit(0);
}
let threads = 0;
const positional = [];
for (let i = 0; i < args.length; ++i) {
  if (args[i] === "--threads") threads = Number(args[++i]);
  else positional.push(args[i]);
}
if (positional.length !== 2 || !Number.isInteger(threads) || threads < 0) usage("bad arguments");
const [modelPath, windowsPath] = positional;
const windows = JSON.parse(fs.readFileSync(windowsPath, "utf8")).windows;
if (!Array.isArray(windows) || windows.length === 0 || windows.some((w) => !Array.isArray(w) || w.length < 2))
  usage(`${windowsPath}: "windows" must be a non-empty array of id arrays of length >= 2`);
const maxLen = Math.max(...windows.map((w) => w.length));

const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const context = await model.createContext({
  contextSize: maxLen, batchSize: maxLen, sequences: 1, threads, flashAttention: false,
});
const sequence = context.getSequence();
const probe = {generateNext: {probabilities: true, options: {temperature: 0}}};

let total = 0;
let scored = 0;
let candidates = Infinity;
const windowNll = [];
for (let w = 0; w < windows.length; ++w) {
  const ids = windows[w];
  await sequence.clearHistory();  // a separate forward per window: positions from 0, empty cache
  const input = ids.map((id, i) => (i + 1 < ids.length ? [id, probe] : id));
  const out = await sequence.controlledEvaluate(input);
  let sum = 0;
  for (let i = 0; i + 1 < ids.length; ++i) {
    const probs = out[i]?.next?.probabilities;
    if (!(probs instanceof Map)) throw new Error(`window ${w} position ${i}: no probabilities`);
    candidates = Math.min(candidates, probs.size);
    const p = probs.get(ids[i + 1]) ?? 0;
    if (!(p > 0)) throw new Error(`window ${w} position ${i}: next id ${ids[i + 1]} has probability ${p}`);
    sum -= Math.log(p);
  }
  windowNll.push(sum / (ids.length - 1));
  total += sum;
  scored += ids.length - 1;
}

const release = llama.llamaCppRelease ?? {};
process.stdout.write(JSON.stringify({
  mean_nll: total / scored,
  windows: windows.length,
  scored_tokens: scored,
  window_nll: windowNll,
  candidates,
  llama_cpp: `${release.repo ?? "?"}@${release.release ?? "?"}`,
}) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
