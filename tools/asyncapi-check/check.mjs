// Parses an AsyncAPI document with the official parser (@asyncapi/parser) and prints what it
// found as one JSON object: {"valid": bool, "diagnostics": [{severity, code, message, path}]}.
//   node check.mjs docs/asyncapi.yaml                       a file (relative $refs from its folder)
//   node check.mjs http://127.0.0.1:8000/asyncapi.yaml      a served document ($refs over HTTP)
// Exit status: 0 when the parser produced a document and reported no error, 1 otherwise.
import { Parser, fromFile, fromURL, DiagnosticSeverity } from '@asyncapi/parser';

const source = process.argv[2];
if (!source) {
  console.error('usage: node check.mjs <file or http(s) URL of an AsyncAPI document>');
  process.exit(2);
}
const parser = new Parser();
const input = /^https?:\/\//.test(source) ? fromURL(parser, source) : fromFile(parser, source);
const { document, diagnostics } = await input.parse();
const severities = Object.fromEntries(
  Object.entries(DiagnosticSeverity).map(([name, value]) => [value, name.toLowerCase()]),
);
const found = diagnostics.map((d) => ({
  severity: severities[d.severity] ?? String(d.severity),
  code: d.code,
  message: d.message,
  path: d.path.join('/'),
}));
const valid = document !== undefined && !found.some((d) => d.severity === 'error');
console.log(JSON.stringify({ valid, diagnostics: found }, null, 1));
process.exit(valid ? 0 : 1);
