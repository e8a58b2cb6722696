// For every assistant entry of a pi session file, print the context pi's own code builds for it:
// convertToLlm(buildSessionContext(entries, entry.parentId).messages), after parseSessionEntries
// and migrateSessionEntries (all in memory: the file is only read).
// Usage: node contexts.mjs <pi-coding-agent package dir> <session.jsonl>
// Output: one JSON object {"pool": [message, ...], "assistants": [{"line": n, "id": id, "context": [i, ...]}]}
// with the assistants in file order; a context lists indices into the pool (shared messages are sent once).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, sessionPath] = process.argv.slice(2);
const load = (rel) => import(pathToFileURL(join(pkgDir, "dist", "core", rel)).href);
const { parseSessionEntries, migrateSessionEntries, buildSessionContext } = await load("session-manager.js");
const { convertToLlm } = await load("messages.js");

const content = readFileSync(sessionPath, "utf8");
const entries = parseSessionEntries(content);

// The 1-based file line of each parsed entry (parseSessionEntries skips blank and malformed lines).
const lines = [];
content.split("\n").forEach((raw, i) => {
  if (!raw.trim()) return;
  try {
    JSON.parse(raw);
    lines.push(i + 1);
  } catch {}
});
if (lines.length !== entries.length) throw new Error(`line map ${lines.length} != entries ${entries.length}`);
const lineOf = new Map(entries.map((e, i) => [e, lines[i]]));

migrateSessionEntries(entries);
const pool = [];
const byObject = new Map();
const byText = new Map();
const indexOf = (message) => {
  if (byObject.has(message)) return byObject.get(message);
  const text = JSON.stringify(message);
  if (!byText.has(text)) {
    byText.set(text, pool.length);
    pool.push(message);
  }
  byObject.set(message, byText.get(text));
  return byText.get(text);
};
const assistants = [];
for (const entry of entries) {
  if (entry.type !== "message" || entry.message?.role !== "assistant") continue;
  const context = convertToLlm(buildSessionContext(entries, entry.parentId).messages);
  assistants.push({ line: lineOf.get(entry), id: entry.id, context: context.map(indexOf) });
}
process.stdout.write(JSON.stringify({ pool, assistants }));
