// Write small pi session files with pi's own SessionManager (the files pi itself would write).
// Usage: node make_fixtures.mjs <pi-coding-agent package dir> <out dir> [sample path]
// Writes <out>/branched.jsonl, compacted.jsonl (version 3, written by SessionManager),
// v2_hook.jsonl and v1_linear.jsonl (derived from compacted.jsonl the way older pi wrote them),
// and, when given, the bundled sample session (a branch and a compaction).
// Ids and timestamps are random: regenerating changes the files, not what they contain.
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [pkgDir, outDir, samplePath] = process.argv.slice(2);
const { SessionManager } = await import(pathToFileURL(join(pkgDir, "dist", "core", "session-manager.js")).href);

let clock = Date.parse("2026-11-20T09:00:00Z");
const now = () => (clock += 1500);
const usage = { input: 10, output: 5, cacheRead: 0, cacheWrite: 0, totalTokens: 15, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 } };
const user = (text) => ({ role: "user", content: [{ type: "text", text }], timestamp: now() });
const assistant = (content, stopReason = "stop", model = "claude-sonnet-4-5", extra = {}) => ({
  role: "assistant", content, api: "anthropic-messages", provider: "anthropic", model, usage, stopReason, timestamp: now(), ...extra,
});
const text = (t) => ({ type: "text", text: t });
const call = (id, name, args) => ({ type: "toolCall", id, name, arguments: args });
const result = (id, name, t, isError = false, more = []) => ({
  role: "toolResult", toolCallId: id, toolName: name, content: [text(t), ...more], isError, timestamp: now(),
});
const bash = (command, output, extra = {}) => ({
  role: "bashExecution", command, output, exitCode: 0, cancelled: false, truncated: false, timestamp: now(), ...extra,
});
const image = { type: "image", data: "iVBORw0KGgo=", mimeType: "image/png" };

const tempDirs = [];
function create() {
  tempDirs.push(mkdtempSync(join(tmpdir(), "pi-fixture-")));
  return SessionManager.create("/home/dev/project", tempDirs[tempDirs.length - 1]);
}

function branched() {
  const s = create();
  s.appendThinkingLevelChange("medium");
  s.appendMessage(user("List the files and read the README."));
  const a1 = s.appendMessage(assistant([{ type: "thinking", thinking: "Start with ls." }, text("Let me look."), call("c1", "bash", { command: "ls" })], "toolUse"));
  const r1 = s.appendMessage(result("c1", "bash", "README.md\nsrc\n"));
  s.appendMessage(assistant([text("Reading it now."), text("One moment."), call("c2", "read", { path: "README.md" })], "toolUse"));
  s.appendMessage(result("c2", "read", "# Project\nA demo.", false));
  const a3 = s.appendMessage(assistant([text("The README says: a demo project.")]));
  s.appendLabelChange(a3, "checkpoint");
  s.appendMessage(user("Now delete src."));
  s.appendMessage(assistant([], "aborted", "claude-sonnet-4-5", { errorMessage: "Request was aborted." }));
  s.appendMessage(user("Sorry, delete src/old only."));
  s.appendMessage(assistant([], "error", "claude-sonnet-4-5", { errorMessage: "overloaded" }));
  s.appendModelChange("openai", "gpt-5");
  s.appendMessage(assistant([call("c3", "bash", { command: "rm -r src/old" })], "toolUse", "gpt-5", { provider: "openai", api: "openai-responses" }));
  s.appendMessage(result("c3", "bash", "rm: src/old: No such file", true));
  s.appendMessage(assistant([text("")], "stop", "gpt-5", { provider: "openai", api: "openai-responses" }));
  // Back to after the first tool result, with a summary of the abandoned branch.
  s.branchWithSummary(r1, "Tried deleting src/old; it did not exist.");
  s.appendMessage(user("Instead, count the lines of README.md."));
  s.appendMessage(assistant([call("c4", "bash", { command: "wc -l README.md" })], "toolUse"));
  s.appendMessage(result("c4", "bash", "2 README.md"));
  s.appendMessage(assistant([text("README.md has 2 lines.")]));
  s.appendSessionInfo("readme questions");
  // A plain branch (no summary) from the first assistant turn, answering its call differently.
  s.branch(a1);
  s.appendMessage(result("c1", "bash", "README.md\n"));
  s.appendCustomEntry("my-ext", { count: 1 });
  s.appendMessage(assistant([text("Only a README here.")]));
  return s.getSessionFile();
}

function compacted() {
  const s = create();
  s.appendMessage({ role: "user", content: [text("Here is a screenshot of the bug:"), image], timestamp: now() });
  s.appendMessage(assistant([call("k1", "read", { path: "app.py" })], "toolUse"));
  s.appendMessage(result("k1", "read", "def main(): pass", false, [image]));
  const keep1 = s.appendMessage(assistant([text("main() does nothing yet.")]));
  s.appendMessage(bash("pytest -q", "1 failed", { exitCode: 1 }));
  s.appendMessage(bash("cat secrets.txt", "hunter2", { excludeFromContext: true }));
  s.appendCustomMessageEntry("reminder", "Remember to run the linter.", true, { n: 1 });
  s.appendMessage(user("Fix the failing test."));
  s.appendMessage(assistant([call("k2", "edit", { path: "app.py", oldText: "pass", newText: "return 0" })], "toolUse"));
  s.appendMessage(result("k2", "edit", "edited"));
  s.appendCompaction("User shared a bug screenshot; main() was a stub; test failed.", keep1, 5000);
  const afterFirst = s.appendMessage(user("Did it work?"));
  s.appendMessage(assistant([call("k3", "bash", { command: "pytest -q" })], "toolUse"));
  s.appendMessage(result("k3", "bash", "1 passed"));
  s.appendMessage({ role: "custom", customType: "note", content: [text("extension note"), image], display: false, timestamp: now() });
  s.appendMessage(bash("sleep 100", "", { cancelled: true, exitCode: undefined }));
  s.appendMessage(bash("make big", "lots", { exitCode: 2, truncated: true, fullOutputPath: "/tmp/out.txt" }));
  const keep2 = s.appendMessage(assistant([text("Tests pass now.")]));
  s.appendMessage(user("Commit it."));
  s.appendMessage(assistant([call("k4", "bash", { command: "git commit -am fix" })], "toolUse"));
  s.appendMessage(result("k4", "bash", "[main 1a2b3c] fix"));
  s.appendCompaction("Fixed main(); tests pass; committed.", keep2, 7000);
  s.appendMessage(user("Push it."));
  s.appendMessage(assistant([text("Pushed.")]));
  // A branch from before the second compaction: its path holds only the first one.
  s.branch(afterFirst);
  s.appendMessage(assistant([text("Let me check again first.")]));
  return s.getSessionFile();
}

function sample() {
  const s = create();
  s.appendMessage(user("The function add() in calc.py returns the wrong result. Please fix it and run the tests."));
  s.appendMessage(assistant([{ type: "thinking", thinking: "Read calc.py first." }, text("I'll read calc.py."), call("s1", "read", { path: "calc.py" })], "toolUse"));
  const readResult = s.appendMessage(result("s1", "read", "def add(a, b):\n    return a - b\n"));
  s.appendMessage(assistant([text("add() subtracts. Fixing it."), call("s2", "edit", { path: "calc.py", oldText: "a - b", newText: "a + b" })], "toolUse"));
  s.appendMessage(result("s2", "edit", "Successfully replaced text in calc.py."));
  s.appendMessage(assistant([call("s3", "bash", { command: "python -m pytest -q" })], "toolUse"));
  s.appendMessage(result("s3", "bash", "3 passed in 0.01s"));
  const done = s.appendMessage(assistant([text("Fixed: add() now returns a + b, and the 3 tests pass.")]));
  s.appendMessage(user("Also add a subtract() function with a test."));
  s.appendMessage(assistant([call("s4", "edit", { path: "calc.py", oldText: "return a + b\n", newText: "return a + b\n\n\ndef subtract(a, b):\n    return a - b\n" })], "toolUse"));
  s.appendMessage(result("s4", "edit", "Successfully replaced text in calc.py."));
  s.appendMessage(assistant([call("s5", "write", { path: "test_subtract.py", content: "from calc import subtract\n\n\ndef test_subtract():\n    assert subtract(5, 3) == 2\n" })], "toolUse"));
  s.appendMessage(result("s5", "write", "Wrote test_subtract.py."));
  s.appendCompaction("The user asked to fix add() in calc.py (it subtracted); fixed and tests pass. Then asked for subtract() with a test: added both.", done, 12000);
  s.appendMessage(user("Run the whole test suite."));
  s.appendMessage(assistant([call("s6", "bash", { command: "python -m pytest -q" })], "toolUse"));
  s.appendMessage(result("s6", "bash", "4 passed in 0.01s"));
  s.appendMessage(assistant([text("All 4 tests pass.")]));
  // The user goes back to the fix and asks for a different approach.
  s.branchWithSummary(readResult, "Fixed add(), then added subtract() with a test; all tests passed.");
  s.appendMessage(user("Actually, write a test for add() first, then fix it."));
  s.appendMessage(assistant([call("s7", "write", { path: "test_add.py", content: "from calc import add\n\n\ndef test_add():\n    assert add(2, 2) == 4\n" })], "toolUse"));
  s.appendMessage(result("s7", "write", "Wrote test_add.py."));
  s.appendMessage(assistant([text("Added test_add.py; it fails until add() is fixed.")]));
  return s.getSessionFile();
}

function deriveOlder(v3Path) {
  const entries = readFileSync(v3Path, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  // v2: same tree, a custom message under its old role name "hookMessage".
  const v2 = entries.map((e) => structuredClone(e));
  v2[0].version = 2;
  for (const e of v2) if (e.type === "message" && e.message.role === "custom") e.message.role = "hookMessage";
  writeFileSync(join(outDir, "v2_hook.jsonl"), v2.map((e) => JSON.stringify(e)).join("\n") + "\n");
  // v1: the longest path as a flat list, firstKeptEntryIndex counting the header as 0.
  const byId = new Map(entries.slice(1).map((e) => [e.id, e]));
  const pathTo = (leaf) => {
    const path = [];
    for (let e = leaf; e; e = e.parentId ? byId.get(e.parentId) : undefined) path.unshift(e);
    return path;
  };
  const path = entries.slice(1).map(pathTo).reduce((a, b) => (b.length > a.length ? b : a));
  const v1 = [{ type: "session", id: entries[0].id, timestamp: entries[0].timestamp, cwd: entries[0].cwd }];
  const indexOf = new Map(path.map((e, i) => [e.id, i + 1]));
  for (const e of path) {
    const { id, parentId, firstKeptEntryId, ...rest } = e;
    if (e.type === "compaction") rest.firstKeptEntryIndex = indexOf.get(firstKeptEntryId);
    v1.push(rest);
  }
  writeFileSync(join(outDir, "v1_linear.jsonl"), v1.map((e) => JSON.stringify(e)).join("\n") + "\n");
}

copyFileSync(branched(), join(outDir, "branched.jsonl"));
const compactedPath = compacted();
copyFileSync(compactedPath, join(outDir, "compacted.jsonl"));
deriveOlder(compactedPath);
if (samplePath) copyFileSync(sample(), samplePath);
for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
