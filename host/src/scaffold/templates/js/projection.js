// {{name}}: a Projector projection in JavaScript. `handle` turns each event
// into mutations of the read model; `describe` says what it reads and writes.
// WIT records are objects with camelCase keys, variants are { tag, val }.
//
// Build:  ./build.sh   (a component: {{name}}.wasm)
// Try:    projector plugins try {{name}}.wasm --event sample-event.json

function one(event) {
  const title = JSON.parse(event.data).title;
  if (typeof title !== "string") {
    return { tag: "err", val: { kind: "permanent", message: `${event.eventType} has no title` } };
  }
  const set = [{ name: "title", value: { tag: "one", val: { tag: "text", val: title } } }];
  return { tag: "ok", val: [{ tag: "merge-node", val: { node: { label: "Interview", key: event.stream }, set } }] };
}

export const handler = {
  describe() {
    return {
      name: "{{name}}",
      version: "0.1.0",
      readModelVersion: 1,
      eventTypes: ["InterviewCreated"],
      streamPrefixes: [],
      partitionKey: { tag: "by-stream" },
      labels: [{ label: "Interview", keyProperty: "id", shared: false }],
      relationshipTypes: [],
    };
  },
  handle(events) {
    return events.map(one);
  },
};
