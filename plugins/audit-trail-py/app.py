"""The audit trail, in Python: every change a person made to an interview as a
`Change` node, (User)-[:MADE]->(Change)-[:CONCERNS]->(Interview). The same
projection as plugins/audit-trail (Rust) and plugins/audit-trail-js; the three
give the same read model.

Built into a component by componentize-py against the `projection` world in
wit/ (see build.sh); the host gives it an empty WASI context.
"""

import json

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.types import (
    EdgeMerge, EdgeRef, ErrorKind, HandlerError, LabelDecl, Manifest, Mutation_MergeEdge,
    Mutation_MergeNode, NodeMerge, NodeRef, PartitionKey_DataPointer, Property, Scalar_Integer,
    Scalar_Null, Scalar_Text, Value_One,
)

AUDITED = ["SentenceEdited", "AnalysisOverridden", "AnalysisCleared", "InterviewMetadataUpdated"]


def value(v):
    if v is None:
        return Value_One(Scalar_Null())
    if isinstance(v, int):
        return Value_One(Scalar_Integer(v))
    return Value_One(Scalar_Text(v))


def merge_node(label, key, **props):
    return Mutation_MergeNode(NodeMerge(NodeRef(label, key), [Property(k, value(v)) for k, v in props.items()]))


def merge_edge(from_, rel_type, to):
    return Mutation_MergeEdge(EdgeMerge(EdgeRef(NodeRef(*from_), rel_type, NodeRef(*to)), []))


def audit(event):
    try:
        envelope = json.loads(event.metadata)
        interview = json.loads(event.data)["interview_id"]
        if not isinstance(interview, str):
            raise TypeError("interview_id is not text")
        actor = envelope.get("actor") or {}
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        return Err(HandlerError(ErrorKind.PERMANENT, f"{event.event_type} v{event.schema_version} is unusable: {e!r}"))
    if actor.get("actor_type") != "user":
        return Ok([])
    if not isinstance(actor.get("user_id"), str):
        return Err(HandlerError(ErrorKind.PERMANENT, f"{event.event_type} has a user actor without a user_id"))
    user, change = ("User", actor["user_id"]), ("Change", event.id)
    return Ok([
        merge_node(*user),
        merge_node(*change, type=event.event_type, stream=event.stream, revision=event.revision,
                   at=envelope.get("occurred_at")),
        merge_edge(user, "MADE", change),
        merge_edge(change, "CONCERNS", ("Interview", interview)),
    ])


class Handler(exports.Handler):
    def describe(self):
        return Manifest(
            name="audit-trail-py", version="0.1.0", read_model_version=1, event_types=AUDITED,
            stream_prefixes=[], partition_key=PartitionKey_DataPointer("/interview_id"),
            labels=[LabelDecl("User", "id", False), LabelDecl("Change", "id", False), LabelDecl("Interview", "id", True)],
            relationship_types=["MADE", "CONCERNS"],  # Interview: the interview graph's node, shared
        )

    def handle(self, events):
        return [audit(e) for e in events]
