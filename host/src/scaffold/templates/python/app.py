"""{{name}}: a Projector projection in Python. `handle` turns each event into
mutations of the read model; `describe` says what it reads and what it writes.

Build:  ./build.sh   (a component: {{name}}.wasm)
Try:    projector plugins try {{name}}.wasm --event sample-event.json
"""

import json

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports.types import (
    ErrorKind, HandlerError, LabelDecl, Manifest, Mutation_MergeNode, NodeMerge, NodeRef,
    PartitionKey_ByStream, Property, Scalar_Text, Value_One,
)


def one(event):
    try:
        title = json.loads(event.data)["title"]
    except (ValueError, KeyError) as e:
        return Err(HandlerError(ErrorKind.PERMANENT, f"{event.event_type} has no title: {e!r}"))
    node = NodeMerge(NodeRef("Interview", event.stream), [Property("title", Value_One(Scalar_Text(title)))])
    return Ok([Mutation_MergeNode(node)])


class Handler(exports.Handler):
    def describe(self):
        return Manifest(
            name="{{name}}", version="0.1.0", read_model_version=1, event_types=["InterviewCreated"],
            stream_prefixes=[], partition_key=PartitionKey_ByStream(),
            labels=[LabelDecl("Interview", "id", False)], relationship_types=[],
        )

    def handle(self, events):
        return [one(e) for e in events]
