// The audit trail, in JavaScript: every change a person made to an interview
// as a `Change` node, (User)-[:MADE]->(Change)-[:CONCERNS]->(Interview). The
// same projection as plugins/audit-trail (Rust) and plugins/audit-trail-py;
// the three give the same read model.
//
// Built into a component by componentize-qjs (QuickJS) against the
// `projection` world in wit/ (see build.sh). WIT records are objects with
// camelCase keys, variants are { tag, val }, enums are strings.

const AUDITED = ["SentenceEdited", "AnalysisOverridden", "AnalysisCleared", "InterviewMetadataUpdated"];

const value = (v) =>
  v === null || v === undefined
    ? { tag: "one", val: { tag: "null" } }
    : { tag: "one", val: Number.isInteger(v) ? { tag: "integer", val: v } : { tag: "text", val: v } };

const mergeNode = (label, key, props = {}) => ({
  tag: "merge-node",
  val: { node: { label, key }, set: Object.entries(props).map(([name, v]) => ({ name, value: value(v) })) },
});

const mergeEdge = ([fromLabel, fromKey], relType, [toLabel, toKey]) => ({
  tag: "merge-edge",
  val: { edge: { from: { label: fromLabel, key: fromKey }, relType, to: { label: toLabel, key: toKey } }, set: [] },
});

function audit(event) {
  let envelope, interview;
  try {
    envelope = JSON.parse(event.metadata);
    interview = JSON.parse(event.data).interview_id;
    if (typeof interview !== "string") throw new Error("no interview_id");
  } catch (e) {
    return { tag: "err", val: { kind: "permanent", message: `${event.eventType} v${event.schemaVersion} is unusable: ${e}` } };
  }
  const actor = envelope.actor || {};
  if (actor.actor_type !== "user") return { tag: "ok", val: [] };
  if (typeof actor.user_id !== "string") {
    return { tag: "err", val: { kind: "permanent", message: `${event.eventType} has a user actor without a user_id` } };
  }
  const user = ["User", actor.user_id];
  const change = ["Change", event.id];
  return {
    tag: "ok",
    val: [
      mergeNode(...user),
      mergeNode(...change, {
        type: event.eventType,
        stream: event.stream,
        revision: event.revision,
        at: envelope.occurred_at ?? null,
      }),
      mergeEdge(user, "MADE", change),
      mergeEdge(change, "CONCERNS", ["Interview", interview]),
    ],
  };
}

export const handler = {
  describe() {
    return {
      name: "audit-trail-js",
      version: "0.1.0",
      readModelVersion: 1,
      eventTypes: AUDITED,
      streamPrefixes: [],
      partitionKey: { tag: "data-pointer", val: "/interview_id" },
      labels: [
        { label: "User", keyProperty: "id", shared: false },
        { label: "Change", keyProperty: "id", shared: false },
        { label: "Interview", keyProperty: "id", shared: true }, // the interview graph's node, shared
      ],
      relationshipTypes: ["MADE", "CONCERNS"],
    };
  },
  handle(events) {
    return events.map(audit);
  },
};
